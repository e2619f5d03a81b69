"""The Store: every repository on one Database, and one transaction boundary."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from storage.db import Database
from storage.media import SqlMediaRepository
from storage.notifications import SqlNotificationRepository
from storage.outbox import SqlOutbox
from storage.posts import SqlCommentRepository, SqlLikeRepository, SqlPostRepository
from storage.refresh_tokens import SqlRefreshTokenRepository
from storage.relations import SqlRelationRepository
from storage.users import SqlUserRepository


class SqlStore:
    """Implements domain.ports.Store.

    Every repository call made inside `async with store.transaction():` runs on that
    transaction's connection (piccolo's per-engine ContextVar); nested blocks join the
    outer transaction. On SQLite the transaction takes the write lock up front."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = SqlUserRepository(db)
        self.relations = SqlRelationRepository(db)
        self.posts = SqlPostRepository(db)
        self.likes = SqlLikeRepository(db)
        self.comments = SqlCommentRepository(db)
        self.notifications = SqlNotificationRepository(db)
        self.media = SqlMediaRepository(db)
        self.refresh_tokens = SqlRefreshTokenRepository(db)
        self.outbox = SqlOutbox(db)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.db.transaction()

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` after the current transaction commits (now, outside one)."""
        self.db.after_commit(callback)

    def add_outbox_listener(self, listener: Callable[[], object]) -> None:
        """Call `listener` after every commit that appended outbox events (relay waker)."""
        self.outbox.add_listener(listener)

    def remove_outbox_listener(self, listener: Callable[[], object]) -> None:
        self.outbox.remove_listener(listener)
