"""Plaza storage layer: piccolo tables and migrations, repositories implementing the
domain ports, the SQL feed, search and the blob store.

Import the module you need (`storage.factory.open_storage`, `storage.migrate.migrate`,
`storage.blobs.FileBlobStore`); this package itself imports nothing, so importing any of
them never drags in the rest (and `storage.migrate` → `storage.piccolo_conf` is no cycle).
"""
