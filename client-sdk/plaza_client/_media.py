"""Reading an upload from a path, bytes or a file object, with its content type."""

from __future__ import annotations

import mimetypes
import os
from typing import IO

__all__ = ["read_upload", "sniff_image_type"]

# Magic numbers of the image types a social server accepts; used when the caller gives
# bytes without a name, so the multipart part still carries a truthful Content-Type.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image_type(data: bytes) -> str | None:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_upload(
    file: str | os.PathLike[str] | bytes | IO[bytes],
    *,
    filename: str | None = None,
    content_type: str | None = None,
) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) of an upload. The whole file is read: uploads are
    images bounded by the server's size limit, and bytes in hand let a request be retried
    after a token refresh."""
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
        name = filename or "upload"
    elif isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        with open(path, "rb") as fh:
            data = fh.read()
        name = filename or os.path.basename(path)
    else:
        data = file.read()
        name = filename or os.path.basename(str(getattr(file, "name", "") or "upload"))
    ctype = (
        content_type
        or sniff_image_type(data)
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
    return name, data, ctype
