"""GET /metrics: the process's Prometheus metrics (server/metrics.py).

Outside /api/v1 and outside the OpenAPI schema: it is for the operator's scraper, not for
clients. It asks for no token (Prometheus rarely holds one); keep it private at the proxy
(README, "Metrics and logs"). It costs one indexed COUNT and one Redis round trip, each
bounded by the probe deadline.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.access import METRICS_PATH
from server.metrics import CONTENT_TYPE, Metrics

__all__ = ["metrics_endpoint"]


def metrics_endpoint(metrics: Metrics) -> HTTPRouteHandler:
    @get(METRICS_PATH, include_in_schema=False, cache=False, name="metrics")
    async def scrape() -> Response[bytes]:
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    return scrape
