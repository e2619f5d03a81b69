"""Pins the public API: a removal or rename here is a breaking change."""

from __future__ import annotations

import plaza_client

PUBLIC = {
    "AsyncClient", "Client", "LiveSession", "SyncLiveSession", "Subscription",
    "LiveEvent", "Position", "Resync", "RESYNC", "SUBSCRIPTION_LOST", "ResumeState", "Backoff",
    "User", "Me", "Post", "Comment", "CommentCreated", "Notification", "Media", "Relationship",
    "TokenPair", "Page",
    "PlazaError", "AuthError", "Forbidden", "NotFound", "Conflict", "ValidationError",
    "UnsupportedMediaType", "PayloadTooLarge", "RateLimited", "ServiceUnavailable",
    "ProtocolError", "SessionClosed", "NetworkError", "ConnectionLost", "__version__",
}  # fmt: skip

CLIENT_METHODS = {
    "register", "login", "refresh", "logout", "me", "get_user", "update_profile",
    "user_posts", "followers", "following", "follow", "unfollow", "block", "unblock",
    "create_post", "get_post", "delete_post", "like", "unlike", "likes", "comment",
    "comments", "feed", "notifications", "mark_read", "unread_count", "search",
    "upload_media", "media_bytes", "health", "ready", "live", "relationship",
    "logout_all", "change_password",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(plaza_client.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(plaza_client, name), name


def test_sync_and_async_clients_have_the_same_surface() -> None:
    for cls in (plaza_client.AsyncClient, plaza_client.Client):
        missing = {m for m in CLIENT_METHODS if not callable(getattr(cls, m, None))}
        assert not missing, (cls.__name__, missing)


def test_live_session_surface() -> None:
    for cls in (plaza_client.LiveSession, plaza_client.SyncLiveSession):
        for name in ("subscribe", "unsubscribe", "call", "ping", "page", "close", "positions"):
            assert hasattr(cls, name), (cls.__name__, name)


def test_error_hierarchy() -> None:
    e = plaza_client
    for cls in (e.AuthError, e.Forbidden, e.NotFound, e.Conflict, e.ValidationError,
                e.PayloadTooLarge, e.RateLimited, e.ServiceUnavailable, e.ProtocolError,
                e.SessionClosed, e.NetworkError):  # fmt: skip
        assert issubclass(cls, e.PlazaError)
    assert issubclass(e.ConnectionLost, e.NetworkError)
    assert issubclass(e.UnsupportedMediaType, e.ValidationError)
