"""Content-addressed media files on disk (BlobStore)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from pathlib import Path

from domain.errors import InsufficientStorage

log = logging.getLogger("plaza.storage.media")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class FileBlobStore:
    """Files at `<root>/ab/cd/<sha256>`: two levels of 256 directories keep any one
    directory small. The name is the content's hash, so a write is idempotent and a file,
    once present, never changes. File I/O runs in a thread, off the event loop."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        # The hash becomes a path: anything but 64 lowercase hex digits could escape root.
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[0:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put, self.path_for(sha256), data)
        except OSError as error:  # disk full, read-only, not a directory, ...
            log.error("media folder %s cannot be written: %s", self.root, error)
            raise InsufficientStorage("the server cannot store the file now") from error

    async def check_writable(self) -> None:
        """Raises when a file cannot be written to the media folder (GET /ready)."""
        await asyncio.to_thread(self._probe)

    def _probe(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".ready-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)

    async def get(self, sha256: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self.path_for(sha256))

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write a temp file in the same directory, flush it to disk, then rename: readers
        # see either no file or the whole file, never a torn one, even after a crash.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
