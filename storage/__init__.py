"""Plaza storage layer: piccolo tables and migrations, repositories implementing the
domain ports, the SQL feed, search and the blob store.

The server opens it with `await open_storage(url)` and applies migrations with
`await migrate(url)`.
"""

from storage.blobs import FileBlobStore
from storage.factory import Storage, open_storage
from storage.migrate import migrate

__all__ = ["FileBlobStore", "Storage", "migrate", "open_storage"]
