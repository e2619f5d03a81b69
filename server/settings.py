"""Configuration: one frozen `Settings` object read from `PLAZA_*` environment variables.

`Settings.from_env()` is called once at start (serve, worker, migrate). Anything wrong
raises `ConfigError` whose message is one line naming the variable and the problem, so a
misconfigured deployment fails at boot with a readable reason instead of at first use.

An empty variable (`PLAZA_REDIS_URL=`) counts as unset: that is how most process managers
and `.env` files spell "no value".
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from server.proxies import NO_PROXIES, TrustedProxies, parse_trusted_proxies
from server.ratelimit import Rate
from storage.urls import DatabaseKind, parse_database_url

__all__ = ["ConfigError", "Settings"]

KIB = 1024
MIB = 1024 * KIB

# HS256 keys shorter than the 256-bit digest weaken the MAC (RFC 7518 §3.2 asks for at
# least 256 bits); 32 characters is the floor a human-typed key may have.
MIN_SECRET_KEY_CHARS = 32

REDIS_SCHEMES = ("redis", "rediss", "unix")

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")


class ConfigError(Exception):
    """Bad configuration; `str(error)` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, with the default a laptop needs and a reason per limit."""

    # --- where things live ---------------------------------------------------------------
    database_url: str
    # None = embedded: in-process event log, memory channel backend, SQL-pulled feed.
    redis_url: str | None = None
    # Every Redis key and pub/sub channel of this deployment starts with it: two
    # deployments (or a test run) can share one Redis without seeing each other.
    redis_prefix: str = "plaza:"
    secret_key: str = dataclasses.field(repr=False)
    # Exact `scheme://host[:port]` values. Empty = only the server's own origin, which is
    # the safe default: a page on another site must not drive a user's socket (CSWSH).
    allowed_origins: tuple[str, ...] = ()
    media_dir: Path

    # --- process ---------------------------------------------------------------------------
    # Loopback by default: exposing the port is a decision, not an accident.
    host: str = "127.0.0.1"
    port: int = 8000
    # Snowflake node id: 10 bits, so ids minted by concurrent processes never collide as
    # long as each process has its own. None = automatic: 0 when embedded (one process);
    # in a fleet each process claims a free one in Redis at start (server/node_ids.py).
    node_id: int | None = None
    # Reverse proxies whose X-Forwarded-For and X-Request-ID are believed (server/proxies.py).
    # Empty: every peer is a client, whose own claims about itself are never believed.
    trusted_proxies: TrustedProxies = NO_PROXIES
    # Readable lines for a terminal by default; "json" for a log shipper (one object a line).
    log_format: LogFormat = "text"
    # `plaza worker` serves its own Prometheus metrics on this port when set (it has no
    # web server; web processes serve /metrics on their own port). None: not served.
    metrics_port: int | None = None

    # --- auth ------------------------------------------------------------------------------
    # 15 minutes: an access token cannot be revoked before it expires (only sockets are
    # closed on logout), so its life is short; refresh is one cheap request.
    access_token_ttl: int = 900
    # 30 days: a phone app that is opened once a month stays logged in; rotation with
    # reuse detection limits what a stolen refresh token is worth.
    refresh_token_ttl: int = 30 * 24 * 3600
    jwt_issuer: str = "plaza"
    jwt_audience: str = "plaza-api"

    # --- request limits ----------------------------------------------------------------------
    # 1 MiB of JSON is ~2000 maximal posts; no legitimate request body comes near it, and
    # a bound stops memory exhaustion by one slow client.
    max_body_bytes: int = 1 * MIB
    # 10 MiB holds a full-resolution phone photo (typically 2-6 MiB) with margin.
    max_upload_bytes: int = 10 * MIB
    # 40 Mpx covers 48 Mpx-sensor phones' default 12-24 Mpx output and 8K screenshots
    # (33 Mpx); decoded as RGBA it is 160 MB, the most one upload may hold in memory.
    max_image_pixels: int = 40_000_000

    # --- WebSocket ---------------------------------------------------------------------------
    # The protocol's frame limit (over it: close 1009). Client frames are small ops; the
    # biggest, post.create, is 500 characters.
    ws_max_frame_bytes: int = 64 * KIB
    # Phone + laptop + a few tabs; above 10 it is a leak or an abuse (close 4029).
    ws_max_sockets_per_user: int = 10
    # A client shows a feed, notifications and the posts on screen: ~20-40 channels. 128
    # bounds per-socket bookkeeping and fan-out work.
    ws_max_subscriptions: int = 128
    # Per-socket send queue: ~2 s of a heavy feed at 64 KiB frames, thousands of ordinary
    # pushes; a socket further behind is closed with 4001 and resumes (channels/queue.py).
    ws_send_queue_bytes: int = 1 * MIB
    # uvicorn pings every 20 s and drops a peer silent for 20 s more, and the session
    # aborts a socket that has not taken a frame in those 40 s (its buffers full): a dead
    # peer is gone within ~40 s, inside the protocol's ~45 s, at one tiny frame per 20 s.
    ws_ping_interval: int = 20
    ws_ping_timeout: int = 20
    # permessage-deflate: off. Plaza's frames are small JSON (a post push is well under
    # 1 KiB), where it saves little bandwidth, yet each negotiating socket keeps a zlib
    # compressor and decompressor: 40.5 -> 80.7 KiB per idle socket at 5,000 (BENCHMARKS.md)
    # plus a compression per socket per push. PLAZA_WS_COMPRESSION=on for dear links.
    ws_compression: bool = False
    # Long enough for a client to refresh an expired token on a slow mobile link before it
    # sends `auth`, short enough that unauthenticated sockets cannot pile up (close 4401).
    ws_auth_timeout: int = 10

    # --- rate limits (token buckets; RateLimits in server/ratelimit.py) ------------------
    # Kept from before the buckets were split: when set, N per minute for the login and
    # the registration per-IP buckets (each its own bucket now). None: the defaults below.
    rate_auth_per_ip_per_minute: int | None = None
    # Every write per user (posts, likes, comments, follows, uploads, profile changes):
    # 60/min is Mastodon's general 300 per 5 minutes per account; one a second sustained
    # is far above human pace, so bots and runaway clients hit it and people do not.
    rate_writes_per_user_per_minute: int = 60
    # Each None means the default of `rate_limits()`; set by PLAZA_RATE_<NAME>=COUNT/PERIOD.
    rate_login_per_ip: Rate | None = None
    rate_login_per_account: Rate | None = None
    rate_register_per_ip: Rate | None = None
    rate_refresh_per_session: Rate | None = None
    rate_posts_per_user: Rate | None = None
    rate_interactions_per_user: Rate | None = None
    rate_uploads_per_user: Rate | None = None
    # Inbound WebSocket frames per socket and second (a burst of 2.5 times as many): far
    # above what a person tapping a screen sends; a flooding client is cut off in seconds.
    rate_ws_frames_per_second: int = 20

    def rate_limits(self) -> dict[str, Rate]:
        """The rate of every bucket of `RateLimits`: configured, or the default with why."""
        auth = (
            Rate.per_minute(self.rate_auth_per_ip_per_minute)
            if self.rate_auth_per_ip_per_minute is not None
            else None
        )
        return {
            # Mastodon: 25 logins per 5 minutes per IP, 25 per hour per account.
            "login_ip": self.rate_login_per_ip or auth or Rate(25, 300),
            "login_account": self.rate_login_per_account or Rate(25, 3600),
            # Mastodon: 5 sign-ups per 30 minutes per IP.
            "register_ip": self.rate_register_per_ip or auth or Rate(5, 1800),
            # Mastodon has none (its tokens do not rotate). A client refreshes once per
            # access token (15 min); 60 an hour leaves room for reloads and many tabs.
            "refresh_session": self.rate_refresh_per_session or Rate(60, 3600),
            "writes": Rate.per_minute(self.rate_writes_per_user_per_minute),
            # Mastodon: 300 statuses per 3 hours per account.
            "posts": self.rate_posts_per_user or Rate(300, 3 * 3600),
            # Mastodon has no separate one (the general 300 per 5 minutes applies, which
            # `writes` is): 600 an hour is a like or comment every 6 s for a whole hour.
            "interactions": self.rate_interactions_per_user or Rate(600, 3600),
            # Mastodon: 30 media uploads per 30 minutes per account.
            "uploads": self.rate_uploads_per_user or Rate(30, 1800),
        }

    # --- home feed in Redis (a fleet; embedded mode pulls every feed from SQL) -------------
    # As Mastodon: a feed is kept up to date only for users seen within a week; anyone
    # else's is dropped and rebuilt from SQL when they come back (one query).
    feed_active_days: int = 7
    # 800 ids (~40 KB of Redis per user) are 40 pages of 20: more than a session scrolls
    # (Mastodon keeps 800 too); older pages come from SQL, so nothing is lost past it.
    feed_max_items: int = 800
    # Fan-out costs one sorted-set insert per follower per post; above 10,000 followers
    # an author's posts are merged into their followers' feeds at read time instead
    # (one indexed query), which bounds the write amplification of one big account.
    feed_fanout_max_followers: int = 10_000

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: one process, memory backends."""
        return self.redis_url is None

    @property
    def database_kind(self) -> DatabaseKind:
        """`"sqlite"` or `"postgres"` (the one spelling, storage.urls)."""
        return parse_database_url(self.database_url).kind

    @property
    def sqlite_path(self) -> Path | None:
        """The file of a `sqlite:///path` URL (relative) or `sqlite:////abs/path`."""
        url = parse_database_url(self.database_url)
        return Path(url.target) if url.kind == "sqlite" else None

    def __repr__(self) -> str:
        # Never print the secret key or URL passwords (settings end up in logs and tracebacks).
        parts = []
        for field in dataclasses.fields(self):
            if field.name == "secret_key":
                continue
            value = getattr(self, field.name)
            if field.name in ("database_url", "redis_url") and isinstance(value, str):
                value = _redact_url(value)
            parts.append(f"{field.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
    ) -> Settings:
        """Read the settings; may create `<cwd>/var/secret_key` on the first run."""
        env = _Env(os.environ if environ is None else environ)
        base = (Path.cwd() if cwd is None else cwd).absolute()
        var_dir = base / "var"

        database_url = env.get("PLAZA_DATABASE_URL") or f"sqlite:///{var_dir / 'plaza.db'}"
        _check_database_url(database_url)
        redis_url = env.get("PLAZA_REDIS_URL")
        if redis_url is not None:
            _check_redis_url(redis_url)
            if parse_database_url(database_url).kind != "postgres":
                raise ConfigError(
                    "PLAZA_REDIS_URL",
                    "a fleet needs PostgreSQL (PLAZA_DATABASE_URL=postgresql://...); SQLite"
                    " serves one process, which needs no Redis",
                )

        secret_key = env.get("PLAZA_SECRET_KEY")
        if secret_key is None:
            secret_key = _load_or_create_secret_key(var_dir / "secret_key")
        elif len(secret_key) < MIN_SECRET_KEY_CHARS:
            raise ConfigError(
                "PLAZA_SECRET_KEY",
                f"must be at least {MIN_SECRET_KEY_CHARS} characters, got {len(secret_key)}"
                " (generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))')",
            )

        host_var = "PLAZA_HOST" if env.get("PLAZA_HOST") is not None else "HOST"
        port_var = "PLAZA_PORT" if env.get("PLAZA_PORT") is not None else "PORT"
        media_dir = env.get("PLAZA_MEDIA_DIR")

        settings = cls(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=env.get("PLAZA_REDIS_PREFIX") or cls.redis_prefix,
            secret_key=secret_key,
            allowed_origins=_parse_origins(env.get("PLAZA_ALLOWED_ORIGINS")),
            media_dir=(base / media_dir) if media_dir else var_dir / "media",
            host=env.get(host_var) or cls.host,
            port=env.integer(port_var, cls.port, 1, 65535),
            node_id=(
                env.integer("PLAZA_NODE_ID", 0, 0, 1023) if env.get("PLAZA_NODE_ID") else None
            ),
            trusted_proxies=_parse_trusted_proxies(env.get("PLAZA_TRUSTED_PROXIES")),
            log_format=_parse_log_format(env.get("PLAZA_LOG_FORMAT")),
            metrics_port=(
                env.integer("PLAZA_METRICS_PORT", 0, 1, 65535)
                if env.get("PLAZA_METRICS_PORT")
                else None
            ),
            access_token_ttl=env.integer("PLAZA_ACCESS_TOKEN_TTL", cls.access_token_ttl, 30),
            refresh_token_ttl=env.integer("PLAZA_REFRESH_TOKEN_TTL", cls.refresh_token_ttl, 60),
            jwt_issuer=env.get("PLAZA_JWT_ISSUER") or cls.jwt_issuer,
            jwt_audience=env.get("PLAZA_JWT_AUDIENCE") or cls.jwt_audience,
            max_body_bytes=env.integer("PLAZA_MAX_BODY_BYTES", cls.max_body_bytes, KIB),
            max_upload_bytes=env.integer("PLAZA_MAX_UPLOAD_BYTES", cls.max_upload_bytes, KIB),
            max_image_pixels=env.integer("PLAZA_MAX_IMAGE_PIXELS", cls.max_image_pixels, 1),
            # Below 1 KiB a long auth frame (a JWT is ~300 bytes) would not fit.
            ws_max_frame_bytes=env.integer("PLAZA_WS_MAX_FRAME_BYTES", cls.ws_max_frame_bytes, KIB),
            ws_max_sockets_per_user=env.integer(
                "PLAZA_WS_MAX_SOCKETS_PER_USER", cls.ws_max_sockets_per_user, 1
            ),
            ws_max_subscriptions=env.integer(
                "PLAZA_WS_MAX_SUBSCRIPTIONS", cls.ws_max_subscriptions, 1
            ),
            ws_send_queue_bytes=env.integer(
                "PLAZA_WS_SEND_QUEUE_BYTES", cls.ws_send_queue_bytes, KIB
            ),
            ws_ping_interval=env.integer("PLAZA_WS_PING_INTERVAL", cls.ws_ping_interval, 1),
            ws_compression=env.switch("PLAZA_WS_COMPRESSION", cls.ws_compression),
            ws_ping_timeout=env.integer("PLAZA_WS_PING_TIMEOUT", cls.ws_ping_timeout, 1),
            ws_auth_timeout=env.integer("PLAZA_WS_AUTH_TIMEOUT", cls.ws_auth_timeout, 1),
            feed_active_days=env.integer("PLAZA_FEED_ACTIVE_DAYS", cls.feed_active_days, 1),
            feed_max_items=env.integer("PLAZA_FEED_MAX_ITEMS", cls.feed_max_items, 1),
            feed_fanout_max_followers=env.integer(
                "PLAZA_FEED_FANOUT_MAX_FOLLOWERS", cls.feed_fanout_max_followers, 0
            ),
            rate_auth_per_ip_per_minute=(
                env.integer("PLAZA_RATE_AUTH_PER_IP_PER_MINUTE", 0, 1)
                if env.get("PLAZA_RATE_AUTH_PER_IP_PER_MINUTE")
                else None
            ),
            rate_writes_per_user_per_minute=env.integer(
                "PLAZA_RATE_WRITES_PER_USER_PER_MINUTE", cls.rate_writes_per_user_per_minute, 1
            ),
            rate_login_per_ip=env.rate("PLAZA_RATE_LOGIN_PER_IP"),
            rate_login_per_account=env.rate("PLAZA_RATE_LOGIN_PER_ACCOUNT"),
            rate_register_per_ip=env.rate("PLAZA_RATE_REGISTER_PER_IP"),
            rate_refresh_per_session=env.rate("PLAZA_RATE_REFRESH_PER_SESSION"),
            rate_posts_per_user=env.rate("PLAZA_RATE_POSTS_PER_USER"),
            rate_interactions_per_user=env.rate("PLAZA_RATE_INTERACTIONS_PER_USER"),
            rate_uploads_per_user=env.rate("PLAZA_RATE_UPLOADS_PER_USER"),
            rate_ws_frames_per_second=env.integer(
                "PLAZA_RATE_WS_FRAMES_PER_SECOND", cls.rate_ws_frames_per_second, 1
            ),
        )
        if settings.refresh_token_ttl <= settings.access_token_ttl:
            raise ConfigError(
                "PLAZA_REFRESH_TOKEN_TTL",
                f"must be longer than the access token TTL ({settings.access_token_ttl} s),"
                f" got {settings.refresh_token_ttl}",
            )
        return settings


class _Env:
    """Typed reads of the environment; blank values count as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def switch(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        value = raw.lower()
        if value in ("on", "true", "1", "yes"):
            return True
        if value in ("off", "false", "0", "no"):
            return False
        raise ConfigError(name, f"must be on or off, got {raw!r}")

    def rate(self, name: str) -> Rate | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return Rate.parse(raw)
        except ValueError as error:
            raise ConfigError(name, str(error)) from None

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)  # accepts 40_000_000 too
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(name, f"must be {bounds}, got {value}")
        return value


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _check_database_url(url: str) -> None:
    try:
        parse_database_url(url)
    except ValueError as error:
        raise ConfigError("PLAZA_DATABASE_URL", str(error)) from None


def _check_redis_url(url: str) -> None:
    scheme = _scheme(url)
    if scheme not in REDIS_SCHEMES:
        raise ConfigError(
            "PLAZA_REDIS_URL",
            f"unsupported scheme {scheme or url!r}; use redis://, rediss:// or unix://"
            " (or leave it unset for the embedded memory backends)",
        )


def _parse_origins(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    origins = []
    for item in raw.split(","):
        origin = item.strip().rstrip("/").lower()
        if not origin:
            continue
        parts = urlsplit(origin)
        # Browsers send the Origin header as exactly scheme://host[:port]; anything else
        # (a path, "*", a bare host) would never match or would match too much.
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ConfigError(
                "PLAZA_ALLOWED_ORIGINS",
                f"{item.strip()!r} is not an origin; use scheme://host[:port], comma-separated",
            )
        origins.append(origin)
    return tuple(origins)


def _parse_trusted_proxies(raw: str | None) -> TrustedProxies:
    try:
        return parse_trusted_proxies(raw)
    except ValueError as error:
        raise ConfigError(
            "PLAZA_TRUSTED_PROXIES", f"{error}; use IPs or CIDRs, comma-separated"
        ) from None


def _parse_log_format(raw: str | None) -> LogFormat:
    value = (raw or "text").lower()
    if value not in LOG_FORMATS:
        raise ConfigError("PLAZA_LOG_FORMAT", f"must be text or json, got {raw!r}")
    return value


def _load_or_create_secret_key(path: Path) -> str:
    """Read the key kept under var/, creating it (0600) on the first run.

    Two processes may start at once (web and worker): the key is written to a temporary
    file and hard-linked into place, so exactly one key wins and nobody reads a half file.
    """
    variable = f"PLAZA_SECRET_KEY (unset, so {path} is used)"
    if not path.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as file:
                    file.write(secrets.token_urlsafe(48) + "\n")
                # FileExistsError: another process won the race; its key is the key.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as error:
            raise ConfigError(variable, f"cannot create the key file: {error}") from None
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(variable, f"cannot read the key file: {error}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            variable, f"key file is accessible to other users (mode {mode & 0o777:o}); chmod 600"
        )
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise ConfigError(variable, f"key file holds fewer than {MIN_SECRET_KEY_CHARS} chars")
    return key


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
