"""Prometheus metrics of one process: what `/metrics` shows and what the worker serves.

Each app has its own registry (not prometheus_client's global one): tests build many apps
in one process, and the figures read at scrape time (outbox backlog, consumer lag) belong
to one app's storage and event log. Frames sent are a plain integer (`Tally`) bound once
per socket: no label lookup and no lock per WebSocket frame; the rest is read when
Prometheus asks:

- the outbox backlog and the consumer lag per group come from the database and the event
  log (Redis in a fleet), so every web process shows the fleet's figures; each read has a
  deadline, and a figure that cannot be read is left out of that scrape (alert on its
  absence) rather than delaying it;
- events processed and dead-lettered per kind are the in-process worker's own counts
  (embedded `plaza serve`, or `plaza worker` on PLAZA_METRICS_PORT).

Labels are the method, the route template, the status, the consumer kind: never a user
id, a raw path or a token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from channels.eventlog import EventLog
from channels.workers import EventWorker

__all__ = ["CONTENT_TYPE", "Metrics", "Sources", "Tally", "serve_worker_metrics"]

T = TypeVar("T")

log = logging.getLogger("plaza.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST

# A scrape waits at most this long for the database and the event log: Prometheus' own
# scrape timeout defaults to 10 s, and a frozen dependency must not make /metrics hang
# (Redis and database calls have deadlines of 2 and 5 s of their own, too long here).
PROBE_TIMEOUT_S = 1.0

# Request durations: from a cached health check (~1 ms) to the 5 s database deadline and
# a slow upload beyond it.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Backlog(Protocol):
    async def open_count(self) -> int:
        """Outbox entries some consumer kind has not processed yet."""
        ...


@dataclass
class Sources:
    """What the scrape-time figures are read from (bound once the app has started)."""

    outbox: Backlog | None = None
    log: EventLog | None = None
    worker: EventWorker | None = None


class Tally(Collector):
    """A counter for the hottest path, one WebSocket frame: `tally.value += 1` costs a
    tenth of prometheus_client's Counter.inc (which takes a lock for threads the event
    loop does not have); it is read only when scraped."""

    def __init__(self, name: str, documentation: str) -> None:
        self.value = 0
        self._name = name
        self._documentation = documentation

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self.value)


class _EventCounts(Collector):
    """Events handled and buried per consumer kind, read from the worker's groups."""

    def __init__(self, worker: Callable[[], EventWorker | None]) -> None:
        self._worker = worker

    def collect(self) -> Iterator[Metric]:
        worker = self._worker()
        if worker is None:
            return
        processed = CounterMetricFamily(
            "plaza_events_processed",
            "Events handled by this process's consumer groups, by consumer kind",
            labels=["kind"],
        )
        dead = CounterMetricFamily(
            "plaza_events_dead_lettered",
            "Events this process's consumer groups gave up on, by consumer kind",
            labels=["kind"],
        )
        for group in worker.groups:
            processed.add_metric([str(group.kind)], group.handled)
            dead.add_metric([str(group.kind)], group.dead)
        yield processed
        yield dead


class _Probed(Collector):
    """The figures the last scrape read from the database and the event log."""

    def __init__(self) -> None:
        self.backlog: int | None = None
        self.lag: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        if self.backlog is not None:
            yield GaugeMetricFamily(
                "plaza_outbox_backlog",
                "Outbox entries not yet processed by every consumer kind (whole deployment)",
                value=self.backlog,
            )
        if self.lag:
            lag = GaugeMetricFamily(
                "plaza_consumer_lag",
                "Event log entries a consumer group has not acknowledged (whole deployment)",
                labels=["group"],
            )
            for group, value in sorted(self.lag.items()):
                lag.add_metric([group], value)
            yield lag


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    # CPU, memory, open files, GC: what an operator looks at first on a slow instance.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class Metrics:
    """The metrics of one web app."""

    def __init__(self) -> None:
        self.registry = _registry()
        self.sources = Sources()
        self.http_requests = Counter(
            "plaza_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "plaza_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.ws_connections = Gauge(
            "plaza_ws_connections", "WebSockets open in this process", registry=self.registry
        )
        self.ws_frames_sent = Tally(
            "plaza_ws_frames_sent", "WebSocket frames sent by this process (replies and pushes)"
        )
        self.registry.register(self.ws_frames_sent)
        self._probed = _Probed()
        self.registry.register(self._probed)
        self.registry.register(_EventCounts(lambda: self.sources.worker))

    def bind(self, sources: Sources) -> None:
        """The started app's outbox, event log and in-process worker (if any)."""
        self.sources = sources

    async def exposition(self) -> bytes:
        """The text Prometheus scrapes, with the backlog and the lag read just now."""
        await self._probe()
        return generate_latest(self.registry)

    async def _probe(self) -> None:
        outbox, event_log = self.sources.outbox, self.sources.log
        backlog: int | None = None
        lag: dict[str, int] = {}
        # Both reads at once, within one deadline; whatever fails is left out.
        async with asyncio.TaskGroup() as tasks:
            counting = tasks.create_task(_within(outbox.open_count())) if outbox else None
            lagging = tasks.create_task(_within(event_log.lag())) if event_log else None
        if counting is not None:
            backlog = counting.result()
        if lagging is not None:
            lag = lagging.result() or {}
        self._probed.backlog, self._probed.lag = backlog, lag


async def _within(probe: Awaitable[T]) -> T | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            return await probe
    except Exception as error:  # away or slow: this scrape goes without the figure
        log.debug("metrics probe failed: %r", error)
        return None


def serve_worker_metrics(worker: EventWorker, host: str, port: int) -> Callable[[], None]:
    """Serve a `plaza worker`'s own metrics on host:port (it has no web server): its
    events processed and dead-lettered per kind, and the process's CPU and memory. The
    backlog and the lag are the deployment's, shown by every web process's /metrics.
    Returns the function that stops the server."""
    registry = _registry()
    registry.register(_EventCounts(lambda: worker))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("worker metrics on http://%s:%d/metrics", host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
