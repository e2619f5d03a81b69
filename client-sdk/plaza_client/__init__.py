"""Plaza client SDK: typed async and sync clients for the Plaza social server.

from plaza_client import AsyncClient

async with AsyncClient("http://127.0.0.1:8000") as c:
    await c.login("alice", "secret")
    async with c.live() as live:
        await live.subscribe("feed")
        async for event in live:
            print(event.channel, event.type, event.data)
"""

from plaza_client.backoff import Backoff
from plaza_client.client import AsyncClient
from plaza_client.errors import (
    AuthError,
    Conflict,
    ConnectionLost,
    Forbidden,
    NetworkError,
    NotFound,
    PayloadTooLarge,
    PlazaError,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    SessionClosed,
    UnsupportedMediaType,
    ValidationError,
)
from plaza_client.events import RESYNC, SUBSCRIPTION_LOST, LiveEvent, Position, Resync
from plaza_client.live import LiveSession, Subscription
from plaza_client.models import (
    Comment,
    CommentCreated,
    Me,
    Media,
    Notification,
    Page,
    Post,
    Relationship,
    TokenPair,
    User,
)
from plaza_client.resume import ResumeState
from plaza_client.sync import Client, SyncLiveSession

__version__ = "0.1.0"

__all__ = [
    "RESYNC",
    "SUBSCRIPTION_LOST",
    "AsyncClient",
    "AuthError",
    "Backoff",
    "Client",
    "Comment",
    "CommentCreated",
    "Conflict",
    "ConnectionLost",
    "Forbidden",
    "LiveEvent",
    "LiveSession",
    "Me",
    "Media",
    "NetworkError",
    "NotFound",
    "Notification",
    "Page",
    "PayloadTooLarge",
    "PlazaError",
    "Position",
    "Post",
    "ProtocolError",
    "RateLimited",
    "Relationship",
    "ResumeState",
    "Resync",
    "ServiceUnavailable",
    "SessionClosed",
    "Subscription",
    "SyncLiveSession",
    "TokenPair",
    "UnsupportedMediaType",
    "User",
    "ValidationError",
    "__version__",
]
