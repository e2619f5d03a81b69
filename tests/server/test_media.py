"""PillowImageProcessor on real images generated here, and on hostile ones."""

from __future__ import annotations

import asyncio
import io
import random
import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from domain.errors import DomainError, PayloadTooLarge, UnsupportedMedia, ValidationFailed
from domain.ports import ImageProcessor
from server.images import MemoryBudget, PillowImageProcessor

XYZ = tuple[float, float, float]
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture
def processor() -> PillowImageProcessor:
    return PillowImageProcessor()


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Incompressible pixels, so files are big enough to truncate meaningfully."""
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, random.Random(7).randbytes(size[0] * size[1] * bands))


def encode(image: Image.Image, format_: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_, **options)
    return buffer.getvalue()


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_header(width: int, height: int) -> bytes:
    """A structurally valid PNG claiming width x height, a few dozen bytes long."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def animation(format_: str, frames: int = 3, size: tuple[int, int] = (16, 12)) -> bytes:
    colours = ["red", "green", "blue", "yellow", "white"]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    return encode(images[0], format_, save_all=True, append_images=images[1:], duration=80, loop=0)


def test_satisfies_the_port() -> None:
    port: ImageProcessor = PillowImageProcessor()
    assert port is not None


@pytest.mark.parametrize(
    ("format_", "mode", "content_type"),
    [
        ("PNG", "RGBA", "image/png"),
        ("PNG", "P", "image/png"),
        ("PNG", "L", "image/png"),
        ("JPEG", "RGB", "image/jpeg"),
        ("JPEG", "L", "image/jpeg"),
        ("JPEG", "CMYK", "image/jpeg"),
        ("WEBP", "RGB", "image/webp"),
        ("WEBP", "RGBA", "image/webp"),
        ("GIF", "P", "image/gif"),
    ],
)
async def test_accepts_each_format(
    processor: PillowImageProcessor, format_: str, mode: str, content_type: str
) -> None:
    source = Image.new(mode, (64, 48))
    result = await processor.process(encode(source, format_))

    assert result.content_type == content_type
    assert (result.width, result.height) == (64, 48)
    out = reopen(result.data)
    assert out.format == format_
    assert out.size == (64, 48)


async def test_mpo_is_served_as_its_primary_jpeg(processor: PillowImageProcessor) -> None:
    primary, depth_map = Image.new("RGB", (32, 24), "red"), Image.new("RGB", (32, 24), "blue")
    data = encode(primary, "MPO", save_all=True, append_images=[depth_map])
    assert Image.open(io.BytesIO(data)).format == "MPO"

    result = await processor.process(data)

    assert result.content_type == "image/jpeg"
    out = reopen(result.data)
    assert out.format == "JPEG"
    assert out.convert("RGB").getpixel((4, 4))[0] > 200  # type: ignore[index]


async def test_type_comes_from_the_bytes_not_the_name(processor: PillowImageProcessor) -> None:
    # There is no filename or declared type to pass at all: a JPEG is a JPEG.
    result = await processor.process(encode(Image.new("RGB", (8, 8)), "JPEG"))
    assert result.content_type == "image/jpeg"


async def test_jpeg_loses_exif_gps_and_comments_and_stays_upright(
    processor: PillowImageProcessor,
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[ORIENTATION] = 6  # stored sideways: rotate 90° clockwise to view
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 12.5)
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 30.0)
    source = Image.new("RGB", (60, 40), "white")
    source.paste((255, 0, 0), (0, 0, 30, 40))  # red left half (top once upright)
    data = encode(source, "JPEG", exif=exif, comment=b"home address")
    assert reopen(data).getexif().get_ifd(GPS_IFD)  # the source really has GPS
    assert b"SecretCam" in data

    result = await processor.process(data)

    assert b"Exif" not in result.data
    assert b"SecretCam" not in result.data
    assert b"home address" not in result.data
    out = reopen(result.data)
    assert dict(out.getexif()) == {}
    assert "exif" not in out.info
    assert "comment" not in out.info
    # Rotated upright: 40 wide, 60 high, the red half now on top.
    assert (result.width, result.height) == (40, 60) == out.size
    red, green, blue = out.convert("RGB").getpixel((20, 5))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


async def test_png_loses_text_xmp_exif_and_icc(processor: PillowImageProcessor) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret person")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret xmp</x:xmpmeta>")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(
        Image.new("RGB", (10, 10), "blue"), "PNG", pnginfo=info, exif=exif, icc_profile=srgb
    )

    result = await processor.process(data)

    for marker in (b"secret", b"SecretCam", b"tEXt", b"iTXt", b"eXIf", b"iCCP"):
        assert marker not in result.data
    assert reopen(result.data).getpixel((0, 0)) == (0, 0, 255)


def rgb_icc_profile(red: XYZ, green: XYZ, blue: XYZ) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with the given primaries (D50)."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    text = b"test profile\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 78
    white = (0.9642, 1.0, 0.8249)
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(*white)),
        (b"rXYZ", xyz(*red)),
        (b"gXYZ", xyz(*green)),
        (b"bXYZ", xyz(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = body = b""
    for signature, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12  # date
        + b"acsp"
        + b"\0" * 28  # platform, flags, manufacturer, model, attributes, intent
        + xyz(*white)[8:]  # PCS illuminant
        + b"\0" * 48  # creator, id, reserved
    )
    return header + struct.pack(">I", len(tags)) + table + body


SRGB_RED: XYZ = (0.4361, 0.2225, 0.0139)
SRGB_GREEN: XYZ = (0.3851, 0.7169, 0.0971)
SRGB_BLUE: XYZ = (0.1431, 0.0606, 0.7141)


@pytest.mark.parametrize("format_", ["PNG", "JPEG", "WEBP"])
async def test_icc_profile_is_converted_to_srgb_then_dropped(
    processor: PillowImageProcessor, format_: str
) -> None:
    # A profile whose "red" channel is sRGB's green primary: a viewer honouring it shows
    # pure (255, 0, 0) pixels as green. After processing, with no profile left, the
    # pixels themselves must be green, or the photo would change colour.
    swapped = rgb_icc_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    data = encode(Image.new("RGB", (8, 8), (255, 0, 0)), format_, icc_profile=swapped)
    assert reopen(data).info.get("icc_profile") == swapped

    out = reopen((await processor.process(data)).data)

    assert "icc_profile" not in out.info
    r, g, b = out.convert("RGB").getpixel((4, 4))  # type: ignore[misc]
    assert r < 40 and g > 200 and b < 40, (r, g, b)


async def test_broken_icc_profile_is_dropped(processor: PillowImageProcessor) -> None:
    data = encode(Image.new("RGB", (8, 8), (200, 100, 50)), "PNG", icc_profile=b"junk" * 40)
    out = reopen((await processor.process(data)).data)
    assert "icc_profile" not in out.info
    assert out.getpixel((0, 0)) == (200, 100, 50)


async def test_transparency_survives(processor: PillowImageProcessor) -> None:
    palette = Image.new("P", (8, 8), 1)
    gif = reopen((await processor.process(encode(palette, "GIF", transparency=1))).data)
    assert gif.convert("RGBA").getpixel((0, 0))[3] == 0  # type: ignore[index]
    indexed = Image.new("P", (8, 8), 0)
    indexed.putpalette([255, 0, 0, 0, 255, 0])
    indexed.putpixel((7, 7), 1)
    source = encode(indexed, "PNG", transparency=0)
    assert reopen(source).convert("RGBA").getpixel((0, 0))[3] == 0  # type: ignore[index]
    png_p = reopen((await processor.process(source)).data)
    assert png_p.convert("RGBA").getpixel((7, 7)) == (0, 255, 0, 255)
    assert png_p.convert("RGBA").getpixel((0, 0))[3] == 0  # type: ignore[index]
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    png = reopen((await processor.process(encode(rgba, "PNG"))).data)
    assert png.getpixel((0, 0))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("format_", "content_type"),
    [("GIF", "image/gif"), ("WEBP", "image/webp"), ("PNG", "image/png")],
)
async def test_animation_is_kept(
    processor: PillowImageProcessor, format_: str, content_type: str
) -> None:
    result = await processor.process(animation(format_, frames=3))
    assert result.content_type == content_type
    assert (result.width, result.height) == (16, 12)
    out = Image.open(io.BytesIO(result.data))
    assert getattr(out, "n_frames", 1) == 3
    colours = []
    for index in range(3):
        out.seek(index)
        colours.append(out.convert("RGB").getpixel((8, 6)))
    assert colours[0][0] > 200 and colours[1][1] > 100 and colours[2][2] > 200  # type: ignore[index]


async def test_too_many_frames_is_refused() -> None:
    processor = PillowImageProcessor(max_frames=2)
    with pytest.raises(PayloadTooLarge) as caught:
        await processor.process(animation("GIF", frames=3))
    assert caught.value.code == "image_too_large"


async def test_animation_pixels_share_one_budget() -> None:
    # Each 16x12 frame fits in 400 pixels, three of them do not.
    processor = PillowImageProcessor(max_pixels=400)
    await processor.process(animation("WEBP", frames=2))
    with pytest.raises(PayloadTooLarge) as caught:
        await processor.process(animation("WEBP", frames=3))
    assert caught.value.code == "image_too_large"


@pytest.mark.parametrize(
    "data",
    [
        b"hello, I am a text file named cat.png\n",
        b"",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF container, but sound
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
async def test_not_an_image_is_415(processor: PillowImageProcessor, data: bytes) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        await processor.process(data)
    assert caught.value.status == 415
    assert caught.value.code == "unsupported_media_type"


@pytest.mark.parametrize("format_", ["BMP", "TIFF", "ICO", "PPM"])
async def test_other_image_formats_are_415(processor: PillowImageProcessor, format_: str) -> None:
    with pytest.raises(UnsupportedMedia):
        await processor.process(encode(Image.new("RGB", (16, 16)), format_))


@pytest.mark.parametrize("format_", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_truncated_is_422(processor: PillowImageProcessor, format_: str) -> None:
    data = encode(noise((128, 128)), format_)
    with pytest.raises(ValidationFailed) as caught:
        await processor.process(data[: len(data) // 2])
    assert caught.value.status == 422
    assert caught.value.code == "invalid_image"


async def test_corrupt_png_is_422(processor: PillowImageProcessor) -> None:
    data = bytearray(encode(noise((64, 64)), "PNG"))
    data[200:260] = b"\xff" * 60  # inside the IDAT stream: bad zlib data
    with pytest.raises(ValidationFailed) as caught:
        await processor.process(bytes(data))
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (7000, 7000),  # 49 Mpx: over our 40 Mpx, under Pillow's own guard
        (10000, 10000),  # 100 Mpx: Pillow warns (an error under filterwarnings=error)
        (20000, 20000),  # 400 Mpx: Pillow's DecompressionBombError
        (2**31 - 1, 2**31 - 1),
    ],
)
async def test_huge_dimensions_are_refused_before_decoding(
    processor: PillowImageProcessor, width: int, height: int
) -> None:
    data = png_header(width, height)
    assert len(data) < 100
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge) as caught:
        await processor.process(data)
    # 413 rather than the 422 a decode of this tiny, truncated pixel stream would give:
    # the size was judged from the header alone, and no 1.2+ GB buffer was allocated.
    assert caught.value.code == "image_too_large"
    assert caught.value.status == 413
    assert time.perf_counter() - start < 1.0


def test_pillows_guard_is_mapped_without_filterwarnings(processor: PillowImageProcessor) -> None:
    # Production runs without filterwarnings=error: the warning is only a warning there,
    # and our own limit refuses the image.
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(PayloadTooLarge):
        processor.process_sync(png_header(10000, 10000))


async def test_pixel_limit_is_inclusive() -> None:
    processor = PillowImageProcessor(max_pixels=100)
    await processor.process(encode(Image.new("RGB", (10, 10)), "PNG"))
    with pytest.raises(PayloadTooLarge):
        await processor.process(encode(Image.new("RGB", (10, 11)), "PNG"))


async def test_too_many_bytes_is_413() -> None:
    processor = PillowImageProcessor(max_bytes=1000)
    data = encode(noise((40, 40)), "PNG")
    assert len(data) > 1000
    with pytest.raises(PayloadTooLarge) as caught:
        await processor.process(data)
    assert caught.value.status == 413
    assert caught.value.code == "payload_too_large"
    small = encode(Image.new("RGB", (4, 4)), "PNG")
    assert (await processor.process(small)).width == 4


async def test_errors_are_domain_errors(processor: PillowImageProcessor) -> None:
    for data in (b"nope", png_header(1, 1)[:30], png_header(9000, 9000)):
        with pytest.raises(DomainError):
            await processor.process(data)


@pytest.mark.parametrize("cut", [8, 20, 39])
async def test_a_png_cut_inside_its_header_is_invalid_not_foreign(cut: int) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    with pytest.raises(ValidationFailed) as caught:
        await PillowImageProcessor().process(buffer.getvalue()[:cut])
    assert caught.value.status == 422
    assert caught.value.code == "invalid_image"


# --- size and memory ------------------------------------------------------------------------


@pytest.mark.parametrize("format_", ["JPEG", "PNG", "WEBP"])
async def test_big_pictures_are_stored_scaled_down_to_the_stored_limit(format_: str) -> None:
    """Like Mastodon (3840x2160 worth of pixels by default): the aspect ratio is kept, and a
    JPEG is decoded at a reduced scale straight away."""
    processor = PillowImageProcessor(max_stored_pixels=200 * 100)
    source = Image.linear_gradient("L").convert("RGB").resize((800, 400))
    result = await processor.process(encode(source, format_))
    assert result.width * result.height <= 200 * 100
    assert (result.width, result.height) == reopen(result.data).size
    assert abs(result.width / result.height - 2.0) < 0.02
    small = await processor.process(encode(source.resize((100, 50)), format_))
    assert (small.width, small.height) == (100, 50)  # under the limit: untouched


def test_decode_cost_comes_from_the_header_and_the_jpeg_draft_scale() -> None:
    processor = PillowImageProcessor(max_stored_pixels=200 * 100)
    png = encode(Image.new("RGB", (800, 400)), "PNG")
    jpeg = encode(Image.new("RGB", (800, 400)), "JPEG")
    assert processor.decode_cost(png) == 800 * 400 * 8  # full decode, RGBA, two copies
    # 1/2 scale (400x200) is the smallest still covering the 200x100 target... and 1/4
    # (200x100) covers it exactly.
    assert processor.decode_cost(jpeg) == 200 * 100 * 8
    assert processor.decode_cost(b"not an image") == 0


async def test_the_memory_budget_holds_reservations_to_its_capacity() -> None:
    budget = MemoryBudget(100)
    held: list[int] = []
    peak = 0

    async def use(amount: int) -> None:
        nonlocal peak
        async with budget.reserve(amount):
            held.append(amount)
            peak = max(peak, budget.reserved)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(use(n) for n in (60, 60, 30, 250, 10)))
    assert sorted(held) == [10, 30, 60, 60, 250]
    assert peak <= 100  # 250 ran alone, counted as the whole capacity
    assert budget.reserved == 0
