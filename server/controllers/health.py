"""GET /health (the process answers) and GET /ready (its dependencies answer too)."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec

from domain.errors import InsufficientStorage
from server.dependencies import ServicesDep
from server.openapi import PUBLIC

logger = logging.getLogger("plaza.server")

# A load balancer polls /ready every few seconds; a dependency slower than this is as
# good as down for serving traffic, and the probe must not pile up behind it.
READY_TIMEOUT_S = 2.0


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    status: str
    checks: dict[str, str] | None = None


class HealthController(Controller):
    path = "/"
    tags = ("health",)

    @get("/health", cache=False, security=PUBLIC)
    async def health(self) -> Status:
        return Status("ok")

    @get(
        "/ready",
        cache=False,
        security=PUBLIC,
        responses={
            503: ResponseSpec(
                Status, description="Not ready: the checks say which", generate_examples=False
            )
        },
    )
    async def ready(self, services: ServicesDep) -> Response[Status]:
        results: dict[str, str] = {}
        for name, check in services.readiness.items():
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    await check()
                results[name] = "ok"
            except InsufficientStorage:
                results[name] = "insufficient_storage"  # answers, but cannot store
            except Exception as error:  # any failure means "not ready", reported by name
                logger.warning("readiness check %s failed: %s", name, type(error).__name__)
                results[name] = "unavailable"
        ok = all(v == "ok" for v in results.values())
        return Response(
            Status("ok" if ok else "unavailable", results),
            status_code=200 if ok else 503,
            headers=None if ok else {"Retry-After": "5"},
        )
