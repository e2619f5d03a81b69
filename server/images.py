"""Image uploads: identify by decoding, bound the cost, re-encode without metadata.

What a client says an upload is (content type, file name) is ignored: the bytes are
opened with Pillow restricted to four formats, the dimensions are checked before any
pixel is decoded (decompression bombs), every pixel is then decoded (truncated or corrupt
files fail here, not in a viewer), and the image is re-encoded from pixels alone, so EXIF
(GPS position, camera serial), XMP, comments and text chunks are gone. EXIF orientation is
applied first so photos stay upright; an embedded ICC profile is converted to sRGB so
colours survive the profile's removal. Like Mastodon, the stored picture is at most
3840x2160 worth of pixels (`MAX_STORED_PIXELS`): bigger ones are scaled down.

Memory: decoding is the cost (a 40-megapixel RGBA image is 160 MB of pixels). Images are
decoded within `DECODE_BUDGET_BYTES` for the whole process, each reserving what its pixels
will take before it starts; a JPEG is decoded straight at the scale it will be stored at
(libjpeg scales by 1/2, 1/4 or 1/8 while decoding, so a 40-megapixel photo needs about a
quarter of its full size). When an image is done its memory goes back to the system
(`malloc_trim`), so a burst of large uploads does not leave the process hundreds of MB
larger for good (bench: six concurrent 40-megapixel JPEGs, see docs/operations.md).

Errors: more bytes than allowed → PayloadTooLarge (413, `payload_too_large`); not an
image, or another format → UnsupportedMedia (415, `unsupported_media_type`); damaged →
ValidationFailed (422, `invalid_image`); too many pixels or frames → PayloadTooLarge (413,
`image_too_large`): like the byte limit, it is about size and the fix is the same (send a
smaller image), and 413 keeps "your file is fine but too big" apart from "your file is
broken".
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import io
import math
import os
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image, ImageCms, ImageSequence, UnidentifiedImageError

from domain.errors import PayloadTooLarge, UnsupportedMedia, ValidationFailed
from domain.models import ProcessedImage

__all__ = ["CONTENT_TYPES", "PillowImageProcessor"]

# Magic numbers of the accepted formats (WebP is "RIFF" <size> "WEBP").
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def _claims_supported_format(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


KIB = 1024
MIB = 1024 * KIB

# Pillow format name → the content type we store and serve.
CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

# Re-encoding a lossy image loses a little; 90 is visually indistinguishable from the
# original for photos at about half the bytes of 100.
LOSSY_QUALITY = 90

# Mastodon's limit for stored originals (3840x2160): sharp on a 4K screen, a tenth of a
# 40-megapixel camera's bytes. Larger pictures are scaled down to fit this many pixels.
MAX_STORED_PIXELS = 3840 * 2160

# Decoded pixels held at once by the whole process. 384 MiB fits one worst-case image (a
# 40-megapixel RGBA PNG: 160 MB decoded plus a working copy) or several drafted JPEGs;
# more waits its turn instead of pushing the process into swap or the OOM killer.
DECODE_BUDGET_BYTES = 384 * MIB
# Bytes per decoded pixel (RGBA) times the copies alive at once (decoded + converted).
_BYTES_PER_PIXEL = 4 * 2

# Animations longer than this are videos. Each frame costs a decode and Python overhead
# even when tiny, so the bound stops a 10 MiB file of 1x1 frames from costing a minute.
MAX_FRAMES = 500

# EXIF Orientation tag value → the transpose that makes the image upright
# (the table ImageOps.exif_transpose uses; applied per frame for animations).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112

# What Pillow raises on damaged input while parsing or decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


class PillowImageProcessor:
    """`domain.ports.ImageProcessor` over Pillow. Create one per event loop."""

    def __init__(
        self,
        max_bytes: int = 10 * MIB,
        max_pixels: int = 40_000_000,
        *,
        max_frames: int = MAX_FRAMES,
        max_concurrency: int | None = None,
        max_stored_pixels: int = MAX_STORED_PIXELS,
        decode_budget_bytes: int = DECODE_BUDGET_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self.max_stored_pixels = max_stored_pixels
        # One image per core at a time (decoding is CPU-bound), and all of them within
        # the memory budget.
        self._slots = asyncio.Semaphore(max_concurrency or os.cpu_count() or 1)
        self._budget = MemoryBudget(decode_budget_bytes)

    async def process(self, data: bytes) -> ProcessedImage:
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(
                f"the file is {len(data)} bytes; the limit is {self.max_bytes}",
                details={"max_bytes": self.max_bytes},
            )
        cost = await asyncio.to_thread(self.decode_cost, data)
        async with self._slots, self._budget.reserve(cost):
            return await asyncio.to_thread(self.process_sync, data)

    def decode_cost(self, data: bytes) -> int:
        """The bytes decoding `data` will hold, from its header alone (0 if unreadable:
        it is then refused before any pixel is decoded)."""
        try:
            with Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES)) as image:
                pixels = min(image.width * image.height, self.max_pixels)
                if image.format in ("JPEG", "MPO"):
                    pixels = min(pixels, _draft_pixels(image.size, self.max_stored_pixels))
        except Exception:
            return 0
        return pixels * _BYTES_PER_PIXEL

    def process_sync(self, data: bytes) -> ProcessedImage:
        """The blocking work of `process` (minus the byte check); for threads and tests."""
        try:
            return self._process(data)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own guard (a process-wide limit, ~89 Mpx warns and ~179 Mpx fails)
            # fired before ours could look: report it as what it is. Under
            # `warnings.simplefilter("error")` the warning arrives as an exception too.
            raise self._too_many_pixels() from None
        finally:
            release_memory()  # here, in the worker thread: no extra hop back and forth

    def _process(self, data: bytes) -> ProcessedImage:
        try:
            # formats=: only these parsers ever see the bytes (a smaller attack surface than
            # Pillow's ~40 readers). Open reads headers only; no pixel is decoded yet.
            image = Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES))
        except UnidentifiedImageError:
            if _claims_supported_format(data):
                # It says it is one of ours but cannot be read: damaged, not foreign.
                raise ValidationFailed(
                    "the image is damaged or truncated", code="invalid_image"
                ) from None
            raise UnsupportedMedia(
                "not a PNG, JPEG, WebP or GIF image",
                details={"accepted": sorted(CONTENT_TYPES.values())},
            ) from None
        except _DECODE_ERRORS as error:
            raise _invalid(error) from None
        with image:
            # MPO is a JPEG with extra pictures appended (depth maps, previews: cameras and
            # phones write it); viewers show the first, and so do we, as a plain JPEG.
            format_ = "JPEG" if image.format == "MPO" else image.format
            if format_ not in CONTENT_TYPES:  # pragma: no cover - formats= ensures it
                raise UnsupportedMedia("not a PNG, JPEG, WebP or GIF image")
            width, height = image.size
            if width * height > self.max_pixels:
                raise self._too_many_pixels(width, height)
            try:
                animated = format_ != "JPEG" and bool(getattr(image, "is_animated", False))
                if animated:
                    frames, durations = self._frames(image, width * height)
                else:
                    if format_ == "JPEG":
                        # Decode at the smallest libjpeg scale still at least the stored
                        # size: a fraction of the memory and time of a full decode.
                        image.draft(image.mode, _fit(image.size, self.max_stored_pixels))
                    image.load()
                    frames, durations = [image], []
                orientation = _orientation(image)
                info = dict(image.info)
                frames = [
                    _bare(_upright(_to_srgb(self._fit(frame)), orientation)) for frame in frames
                ]
                encoded = _encode(frames, durations, format_, info)
            except _DECODE_ERRORS as error:
                raise _invalid(error) from None
            out_width, out_height = frames[0].size
        return ProcessedImage(
            content_type=CONTENT_TYPES[format_],
            data=encoded,
            width=out_width,
            height=out_height,
        )

    def _frames(self, image: Image.Image, frame_pixels: int) -> tuple[list[Image.Image], list[int]]:
        """Decode an animation frame by frame, stopping as soon as a budget is exceeded.

        The frame count is not asked up front: for GIF that alone would decode every
        frame. All frames are held at once to re-encode, so their pixels share one budget.
        """
        frames: list[Image.Image] = []
        durations: list[int] = []
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            if index >= self.max_frames:
                raise PayloadTooLarge(
                    f"the animation has more than {self.max_frames} frames",
                    code="image_too_large",
                    details={"max_frames": self.max_frames},
                )
            if (index + 1) * frame_pixels > self.max_pixels:
                raise self._too_many_pixels()
            frame.load()
            # Full composited frames, one mode: encoders then need no palette guessing.
            frames.append(frame.convert("RGBA"))
            durations.append(int(frame.info.get("duration", 100)))
        return frames, durations

    def _fit(self, frame: Image.Image) -> Image.Image:
        """The frame scaled down to at most `max_stored_pixels` (a copy), or itself."""
        size = _fit(frame.size, self.max_stored_pixels)
        if size == frame.size:
            return frame
        resized = frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        resized.info = dict(frame.info)  # the ICC profile is still needed by _to_srgb
        return resized

    def _too_many_pixels(self, width: int | None = None, height: int | None = None) -> Exception:
        size = f" ({width}x{height})" if width is not None and height is not None else ""
        return PayloadTooLarge(
            f"the image has too many pixels{size}; the limit is {self.max_pixels}",
            code="image_too_large",
            details={"max_pixels": self.max_pixels},
        )


def _fit(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """`size` scaled down, keeping its aspect ratio, to at most `max_pixels`."""
    width, height = size
    if width * height <= max_pixels:
        return size
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _draft_pixels(size: tuple[int, int], max_pixels: int) -> int:
    """Pixels of a JPEG decoded by `draft` for `_fit(size)`: libjpeg's scales are 1/1,
    1/2, 1/4 and 1/8, and it picks the smallest that is still at least the target."""
    target_w, target_h = _fit(size, max_pixels)
    width, height = size
    for scale in (8, 4, 2):
        if width // scale >= target_w and height // scale >= target_h:
            return math.ceil(width / scale) * math.ceil(height / scale)
    return width * height


class MemoryBudget:
    """At most `capacity` bytes reserved at once; one reservation bigger than all of it
    still runs, alone."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.reserved = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[None]:
        amount = min(amount, self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self.reserved + amount <= self.capacity)
            self.reserved += amount
        try:
            yield
        finally:
            async with self._changed:
                self.reserved -= amount
                self._changed.notify_all()


def _load_malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None  # not glibc (musl, macOS): their allocators return memory themselves


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Give freed heap memory back to the system. glibc keeps what a decode freed in its
    arenas (one per thread, and image buffers are large), so without this the process
    stays at its peak after a burst of uploads."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _invalid(error: BaseException) -> ValidationFailed:
    return ValidationFailed(f"the image is damaged or truncated ({error})", code="invalid_image")


def _orientation(image: Image.Image) -> Image.Transpose | None:
    try:
        value = image.getexif().get(_ORIENTATION_TAG)
    except _DECODE_ERRORS:
        return None  # unreadable EXIF: it is being dropped anyway
    return _ORIENTATION.get(value) if isinstance(value, int) else None


def _upright(frame: Image.Image, orientation: Image.Transpose | None) -> Image.Image:
    return frame.transpose(orientation) if orientation is not None else frame


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _bare(frame: Image.Image) -> Image.Image:
    """The pixels without the source's info dict: Pillow's encoders copy EXIF, ICC
    profiles, comments and text chunks from `info` unless told otherwise."""
    frame.info = {}
    return frame


def _to_srgb(frame: Image.Image) -> Image.Image:
    """Convert pixels described by an embedded ICC profile (e.g. a phone's Display P3) to
    sRGB, since the profile is not kept: without this, such photos look washed out."""
    icc = frame.info.get("icc_profile")
    if not icc or frame.mode not in ("RGB", "RGBA", "CMYK"):
        return frame
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if frame.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(frame, source, _SRGB, outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return frame  # a broken profile: keep the pixels as they are, drop the profile
    return converted if converted is not None else frame


def _encode(
    frames: list[Image.Image], durations: list[int], format_: str, info: dict[Any, Any]
) -> bytes:
    """Encode from pixels only: frames carry no info and no exif=, icc_profile=,
    pnginfo= or comment= is passed, so none of the source's metadata is written."""
    first = frames[0]
    options: dict[str, Any] = {}
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:], duration=durations)
        # Keep a GIF's "play once" (no loop key); everything else loops forever.
        if format_ != "GIF" or "loop" in info:
            options["loop"] = int(info.get("loop", 0))
        if format_ == "GIF":
            # Frames are full composited images: clear before drawing each one, or
            # transparent areas would show the previous frame.
            options["disposal"] = 2
    if format_ == "JPEG":
        if first.mode not in ("RGB", "L"):
            first = first.convert("RGB")  # JPEG has no alpha; CMYK was converted above
        options.update(quality=LOSSY_QUALITY, optimize=True)
    elif format_ == "WEBP":
        if first.mode not in ("RGB", "RGBA"):
            first = first.convert("RGBA" if "A" in first.getbands() else "RGB")
        options.update(quality=LOSSY_QUALITY)
    elif len(frames) == 1 and "transparency" in info and first.mode in ("P", "L", "RGB"):
        # A palette or colour-key transparency lives in info, not in the pixels.
        options["transparency"] = info["transparency"]
    buffer = io.BytesIO()
    first.save(buffer, format=format_, **options)
    return buffer.getvalue()
