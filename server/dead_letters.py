"""`plaza dead-letters list | replay`: what an operator does with events a consumer kind
gave up on (they are kept in the database beside the outbox, whatever Redis does)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from domain.models import DeadLetter
from server.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return asyncio.run(_list(settings, args.kind, args.limit))
    if not args.all and not args.ids:
        print("plaza: dead-letters replay: give outbox ids, or --all", file=sys.stderr)
        return 2
    return asyncio.run(_replay(settings, args.kind, None if args.all else list(args.ids)))


def _event_type(letter: DeadLetter) -> str:
    try:
        kind = msgspec.json.decode(letter.event).get("type", "?")
    except (msgspec.DecodeError, AttributeError):
        return "(undecodable)"
    return str(kind)


async def _list(settings: Settings, kind: str | None, limit: int) -> int:
    from storage.factory import open_storage

    storage = await open_storage(settings.database_url)
    try:
        letters = await storage.outbox_reader.dead_letters(kind, limit)
    finally:
        await storage.close()
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'outbox id':<20} {'kind':<14} {'attempts':>8}  {'failed at':<20} {'event':<20} error")
    for d in letters:
        failed = d.failed_at.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{d.outbox_id:<20} {d.kind:<14} {d.attempts:>8}  {failed:<20} "
            f"{_event_type(d):<20} {d.error.splitlines()[0] if d.error else ''}"
        )
    return 0


async def _replay(settings: Settings, kind: str | None, ids: list[int] | None) -> int:
    from storage.factory import open_storage

    storage = await open_storage(settings.database_url)
    replayed = 0
    try:
        reader = storage.outbox_reader
        letters = await reader.dead_letters(kind, limit=1_000_000)
        for letter in letters:
            if ids is not None and letter.outbox_id not in ids:
                continue
            if await reader.replay(letter.outbox_id, letter.kind):
                replayed += 1
    finally:
        await storage.close()
    missing = set(ids or ()) - {d.outbox_id for d in letters}
    for outbox_id in sorted(missing):
        print(f"plaza: no dead letter for outbox id {outbox_id}", file=sys.stderr)
    print(f"replayed {replayed} dead letter(s); the relay sends them again within a second")
    return 1 if missing else 0
