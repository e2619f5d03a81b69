"""Settings: defaults, the generated secret key, overrides, and one clear line per error."""

from __future__ import annotations

import dataclasses
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.settings import ConfigError, Settings

KEY = "k" * 40


def test_defaults_in_a_fresh_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)

    assert settings.database_url == f"sqlite:///{tmp_path}/var/plaza.db"
    assert settings.sqlite_path == tmp_path / "var" / "plaza.db"
    assert settings.database_kind == "sqlite"
    assert settings.redis_url is None
    assert settings.embedded
    assert settings.allowed_origins == ()
    assert settings.media_dir == tmp_path / "var" / "media"
    # node_id None: automatic (0 embedded; claimed in Redis by each process of a fleet).
    assert (settings.host, settings.port, settings.node_id) == ("127.0.0.1", 8000, None)
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 24 * 3600
    assert (settings.jwt_issuer, settings.jwt_audience) == ("plaza", "plaza-api")
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.max_image_pixels == 40_000_000
    assert settings.ws_max_frame_bytes == 64 * 1024
    assert settings.ws_max_sockets_per_user == 10
    assert settings.ws_max_subscriptions == 128
    assert settings.rate_auth_per_ip_per_minute is None
    assert settings.rate_writes_per_user_per_minute == 60
    # Mastodon's published numbers where it has them (SECURITY.md says why elsewhere).
    assert {name: str(rate) for name, rate in settings.rate_limits().items()} == {
        "login_ip": "25/5m",
        "login_account": "25/1h",
        "register_ip": "5/30m",
        "refresh_session": "60/1h",
        "writes": "60/1m",
        "posts": "300/3h",
        "interactions": "600/1h",
        "uploads": "30/30m",
    }
    assert settings.rate_ws_frames_per_second == 20
    assert settings.ws_compression is False


def test_secret_key_is_generated_kept_private_and_reused(tmp_path: Path) -> None:
    first = Settings.from_env({}, cwd=tmp_path)
    key_file = tmp_path / "var" / "secret_key"

    assert key_file.read_text().strip() == first.secret_key
    assert len(first.secret_key) >= 64  # token_urlsafe(48)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings.from_env({}, cwd=tmp_path).secret_key == first.secret_key
    # Another directory, another key.
    assert Settings.from_env({}, cwd=tmp_path / "other").secret_key != first.secret_key
    # No temporary files left behind.
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret_key"]


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: Settings.from_env({}, cwd=tmp_path).secret_key, range(16)))
    assert len(keys) == 1


def test_given_secret_key_is_used_and_nothing_written(tmp_path: Path) -> None:
    settings = Settings.from_env({"PLAZA_SECRET_KEY": KEY}, cwd=tmp_path)
    assert settings.secret_key == KEY
    assert not (tmp_path / "var").exists()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    Settings.from_env({}, cwd=tmp_path)
    os.chmod(tmp_path / "var" / "secret_key", 0o644)
    with pytest.raises(ConfigError, match=r"PLAZA_SECRET_KEY.*chmod 600"):
        Settings.from_env({}, cwd=tmp_path)


def test_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    key_file = tmp_path / "var" / "secret_key"
    key_file.write_text("short\n")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match="PLAZA_SECRET_KEY"):
        Settings.from_env({}, cwd=tmp_path)


def test_overrides(tmp_path: Path) -> None:
    env = {
        "PLAZA_DATABASE_URL": "postgresql://plaza:pw@db.internal:5432/plaza",
        "PLAZA_REDIS_URL": "rediss://cache.internal:6380/0",
        "PLAZA_SECRET_KEY": KEY,
        "PLAZA_ALLOWED_ORIGINS": " https://plaza.example , http://localhost:3000/ ,",
        "PLAZA_MEDIA_DIR": "/srv/media",
        "PLAZA_HOST": "0.0.0.0",
        "PLAZA_PORT": "9000",
        "PLAZA_NODE_ID": "1023",
        "PLAZA_ACCESS_TOKEN_TTL": "300",
        "PLAZA_REFRESH_TOKEN_TTL": "86400",
        "PLAZA_JWT_ISSUER": "plaza-eu",
        "PLAZA_JWT_AUDIENCE": "plaza-eu-api",
        "PLAZA_MAX_BODY_BYTES": "2048",
        "PLAZA_MAX_UPLOAD_BYTES": "5_000_000",
        "PLAZA_MAX_IMAGE_PIXELS": "1000000",
        "PLAZA_WS_MAX_FRAME_BYTES": "32768",
        "PLAZA_WS_MAX_SOCKETS_PER_USER": "3",
        "PLAZA_WS_MAX_SUBSCRIPTIONS": "16",
        "PLAZA_RATE_AUTH_PER_IP_PER_MINUTE": "5",
        "PLAZA_RATE_WRITES_PER_USER_PER_MINUTE": "30",
        "PLAZA_RATE_REGISTER_PER_IP": "3/1h",
        "PLAZA_RATE_LOGIN_PER_ACCOUNT": "10 / 15m",
        "PLAZA_RATE_REFRESH_PER_SESSION": "20/90s",
        "PLAZA_RATE_POSTS_PER_USER": "100/1d",
        "PLAZA_RATE_INTERACTIONS_PER_USER": "50/m",
        "PLAZA_RATE_UPLOADS_PER_USER": "5/1m",
        "PLAZA_RATE_WS_FRAMES_PER_SECOND": "8",
        "PLAZA_WS_COMPRESSION": "On",
    }
    settings = Settings.from_env(env, cwd=tmp_path)

    assert settings.database_kind == "postgres"  # the one spelling (storage.urls)
    assert settings.sqlite_path is None
    assert settings.redis_url == "rediss://cache.internal:6380/0"
    assert not settings.embedded
    assert settings.allowed_origins == ("https://plaza.example", "http://localhost:3000")
    assert settings.media_dir == Path("/srv/media")
    assert (settings.host, settings.port, settings.node_id) == ("0.0.0.0", 9000, 1023)
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (300, 86400)
    assert (settings.jwt_issuer, settings.jwt_audience) == ("plaza-eu", "plaza-eu-api")
    assert settings.max_body_bytes == 2048
    assert settings.max_upload_bytes == 5_000_000
    assert settings.max_image_pixels == 1_000_000
    assert settings.ws_max_frame_bytes == 32768
    assert settings.ws_max_sockets_per_user == 3
    assert settings.ws_max_subscriptions == 16
    assert settings.rate_auth_per_ip_per_minute == 5
    assert settings.rate_writes_per_user_per_minute == 30
    # The old per-IP variable keeps its meaning (N a minute) where no new one is set.
    assert {name: str(rate) for name, rate in settings.rate_limits().items()} == {
        "login_ip": "5/1m",
        "login_account": "10/15m",
        "register_ip": "3/1h",
        "refresh_session": "20/90s",
        "writes": "30/1m",
        "posts": "100/1d",
        "interactions": "50/1m",
        "uploads": "5/1m",
    }
    assert settings.rate_ws_frames_per_second == 8
    assert settings.ws_compression is True


def test_relative_media_dir_is_under_cwd(tmp_path: Path) -> None:
    settings = Settings.from_env({"PLAZA_MEDIA_DIR": "uploads"}, cwd=tmp_path)
    assert settings.media_dir == tmp_path / "uploads"


def test_host_and_port_fall_back_to_plain_variables(tmp_path: Path) -> None:
    plain = Settings.from_env({"HOST": "0.0.0.0", "PORT": "5000"}, cwd=tmp_path)
    assert (plain.host, plain.port) == ("0.0.0.0", 5000)
    both = {"HOST": "0.0.0.0", "PORT": "5000", "PLAZA_HOST": "::1", "PLAZA_PORT": "6000"}
    preferred = Settings.from_env(both, cwd=tmp_path)
    assert (preferred.host, preferred.port) == ("::1", 6000)


@pytest.mark.parametrize("url", ["postgres://u@h/db", "sqlite:///relative/plaza.db"])
def test_accepted_database_urls(tmp_path: Path, url: str) -> None:
    assert Settings.from_env({"PLAZA_DATABASE_URL": url}, cwd=tmp_path).database_url == url


def test_relative_sqlite_path() -> None:
    settings = Settings(database_url="sqlite:///var/x.db", secret_key=KEY, media_dir=Path("m"))
    assert settings.sqlite_path == Path("var/x.db")


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "unix:///run/redis.sock"])
def test_accepted_redis_urls(tmp_path: Path, url: str) -> None:
    env = {"PLAZA_REDIS_URL": url, "PLAZA_DATABASE_URL": "postgresql://u@db/plaza"}
    settings = Settings.from_env(env, cwd=tmp_path)
    assert settings.redis_url == url and not settings.embedded
    assert settings.redis_prefix == "plaza:"
    prefixed = Settings.from_env({**env, "PLAZA_REDIS_PREFIX": "eu:"}, cwd=tmp_path)
    assert prefixed.redis_prefix == "eu:"


def test_blank_values_count_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env({"PLAZA_REDIS_URL": "", "PLAZA_PORT": "  "}, cwd=tmp_path)
    assert settings.embedded
    assert settings.port == 8000


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("PLAZA_PORT", "http", "must be an integer, got 'http'"),
        ("PORT", "80a", "must be an integer"),
        ("PLAZA_PORT", "0", "between 1 and 65535"),
        ("PLAZA_PORT", "70000", "between 1 and 65535"),
        ("PLAZA_NODE_ID", "1024", "between 0 and 1023"),
        ("PLAZA_NODE_ID", "-1", "between 0 and 1023"),
        ("PLAZA_REDIS_URL", "redis://localhost:6379/0", "a fleet needs PostgreSQL"),
        ("PLAZA_REDIS_URL", "http://localhost:6379", "unsupported scheme 'http'"),
        ("PLAZA_REDIS_URL", "localhost:6379", "unsupported scheme"),
        ("PLAZA_SECRET_KEY", "too-short", "at least 32 characters, got 9"),
        ("PLAZA_DATABASE_URL", "mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("PLAZA_DATABASE_URL", "plaza.db", "unsupported scheme"),
        ("PLAZA_DATABASE_URL", "sqlite://plaza.db", "needs a file path"),
        ("PLAZA_DATABASE_URL", "postgresql://u@h:5432/", "needs a database name"),
        ("PLAZA_ALLOWED_ORIGINS", "https://ok.example,*", "'*' is not an origin"),
        ("PLAZA_ALLOWED_ORIGINS", "plaza.example", "is not an origin"),
        ("PLAZA_ALLOWED_ORIGINS", "https://plaza.example/app", "is not an origin"),
        ("PLAZA_ACCESS_TOKEN_TTL", "10", ">= 30"),
        ("PLAZA_REFRESH_TOKEN_TTL", "600", "longer than the access token TTL"),
        ("PLAZA_MAX_BODY_BYTES", "1.5", "must be an integer"),
        ("PLAZA_MAX_UPLOAD_BYTES", "0", ">= 1024"),
        ("PLAZA_MAX_IMAGE_PIXELS", "0", ">= 1"),
        ("PLAZA_WS_MAX_FRAME_BYTES", "100", ">= 1024"),
        ("PLAZA_WS_MAX_SOCKETS_PER_USER", "0", ">= 1"),
        ("PLAZA_WS_MAX_SUBSCRIPTIONS", "many", "must be an integer"),
        ("PLAZA_RATE_AUTH_PER_IP_PER_MINUTE", "0", ">= 1"),
        ("PLAZA_RATE_WRITES_PER_USER_PER_MINUTE", "x", "must be an integer"),
        ("PLAZA_RATE_LOGIN_PER_IP", "25", "write COUNT/PERIOD"),
        ("PLAZA_RATE_POSTS_PER_USER", "0/1h", "count of at least 1"),
        ("PLAZA_RATE_UPLOADS_PER_USER", "5/1w", "is not a rate"),
        ("PLAZA_WS_COMPRESSION", "gzip", "must be on or off"),
    ],
)
def test_bad_variable_names_itself_in_one_line(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PLAZA_SECRET_KEY": KEY, variable: value}, cwd=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert problem in message
    assert "\n" not in message
    assert caught.value.variable == variable


def test_repr_hides_secrets(tmp_path: Path) -> None:
    env = {
        "PLAZA_SECRET_KEY": KEY,
        "PLAZA_DATABASE_URL": "postgresql://plaza:hunter2@db/plaza",
        "PLAZA_REDIS_URL": "redis://:hunter3@cache:6379/0",
    }
    text = repr(Settings.from_env(env, cwd=tmp_path))
    assert KEY not in text
    assert "hunter2" not in text
    assert "hunter3" not in text
    assert "postgresql://plaza:***@db/plaza" in text


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings.from_env({"PLAZA_SECRET_KEY": KEY}, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZA_SECRET_KEY", KEY)
    monkeypatch.setenv("PLAZA_NODE_ID", "7")
    monkeypatch.delenv("PLAZA_MEDIA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env()
    assert settings.node_id == 7
    assert settings.media_dir == tmp_path / "var" / "media"
