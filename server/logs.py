"""The process's logging: one handler on stderr, text or JSON lines, and request ids.

`configure(fmt)` is called once by the CLI. Every record gets a `request_id` (the one of
the request or WebSocket whose task logged it, "-" outside one) from a filter on the
handler, so any `plaza.*` line written while handling a request carries that request's id
without the code that logs knowing about it. uvicorn's loggers propagate to the same
handler (the CLI starts uvicorn with `log_config=None`), so they share the format.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["ACCESS", "JsonFormatter", "RequestIdFilter", "configure", "request_id"]

# The id of the request (or WebSocket) being handled by the current task. A ContextVar
# follows the request into every task it starts (asyncio copies the context), so lines of
# the socket's writer task carry the socket's id too.
request_id: ContextVar[str | None] = ContextVar("plaza_request_id", default=None)

# One line per request, by the access middleware (server/access.py).
ACCESS = logging.getLogger("plaza.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"

# LogRecord's own attributes: everything else on a record came in through `extra=` (the
# access line's fields) and goes into the JSON object.
# uvicorn adds `color_message` (its message with terminal colours) to its records.
_STANDARD = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "color_message",
    }
)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the record's
    extra fields (an access line's method, route, status, ...) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def handler(fmt: str, stream: Any = None) -> logging.Handler:
    """A stderr handler in the format `fmt` ("text" or "json"), with request ids."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    out.addFilter(RequestIdFilter())
    return out


def configure(fmt: str) -> None:
    """The process's logging: Plaza's loggers, the libraries' and uvicorn's, at INFO."""
    logging.basicConfig(level=logging.INFO, handlers=[handler(fmt)], force=True)
    # Neither format says where a line was logged from, or by which thread or process:
    # not finding out spares every line a walk up the stack (the logging HOWTO's
    # "Optimization"), 38.6 -> 31.5 µs for an access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # piccolo announces the PostgreSQL version on every engine it builds: noise.
    logging.getLogger("piccolo").setLevel(logging.WARNING)
    # uvicorn's access log prints query strings (tokens a client wrongly put in a URL);
    # plaza.access writes the access line instead.
    logging.getLogger("uvicorn.access").disabled = True
