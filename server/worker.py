"""`plaza worker`: the relay candidate and the consumer groups of a fleet, no web server.

Several may run: one of them relays (the PostgreSQL advisory lock decides), and all share
the event log's partitions by leases. SIGTERM (or Ctrl-C) lets the worker finish the
batches in hand and hand its partitions back before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack

from channels.hub import Hub
from channels.publisher import ChannelPublisher
from server.container import build_services
from server.live import event_worker, feed_store, live_layer, node_id
from server.metrics import serve_worker_metrics
from server.settings import Settings

log = logging.getLogger("plaza.worker")


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    from storage.factory import open_storage

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        storage = await open_storage(settings.database_url)
        stack.push_async_callback(storage.close)
        layer = live_layer(settings)
        stack.push_async_callback(layer.close)
        node = await node_id(settings, layer, stack)
        # The hub is never started: a worker publishes, it holds no sockets.
        hub, publisher = Hub(layer.backend), ChannelPublisher(layer.backend)
        services = build_services(
            settings,
            storage,
            hub,
            publisher,
            node_id=node,
            feed_store=feed_store(settings, storage, layer),
        )
        worker = event_worker(services, layer.log)
        # Before the worker starts: a port already taken stops the process at once.
        if settings.metrics_port is not None:
            stack.callback(serve_worker_metrics(worker, settings.host, settings.metrics_port))
        await worker.start()
        log.info("worker %s started", worker.worker_id)
        await stop.wait()
        log.info("worker %s stopping: finishing what it holds", worker.worker_id)
        await worker.stop()
        log.info("worker %s stopped", worker.worker_id)
