"""Fan-out: a broadcast to a segment of every contact, expanded into one message each.

On a fresh copy of the seed database, a broadcast of the email campaign to the seed's
segment (`attributes.seats >= 1`: all `scale` contacts) is created SCHEDULED; then
**the clock** covers exactly `broadcasts.service.start_due`, the call the dispatcher makes
on its tick: the set-based `INSERT … SELECT` of broadcasts/expand.py (segment condition,
skip rules, suppression LEFT JOIN), the counts, the credit charge, SENDING, and the
commit. Nothing sends meanwhile: no dispatcher runs.
"""

from __future__ import annotations

import time
from typing import Any

from bench import support
from bench.seed import Seed, clone, discard

from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.db.base import utcnow
from tidings.db.engine import Database


async def _expand(url: str, seed: Seed) -> dict[str, Any]:
    db = Database(support.settings(url))
    try:
        async with db.transaction() as session:
            created = await broadcasts.create_broadcast(
                session,
                org_id=seed.org_id,
                body=BroadcastCreate(
                    name="fan-out",
                    campaign_id=seed.email_campaign_id,
                    segment_ids=[seed.segment_id],
                ),
            )
        broadcast_id = created.broadcast.id
        started = time.perf_counter()
        async with db.transaction() as session:
            begun = await broadcasts.start_due(session, broadcast_id=broadcast_id, now=utcnow())
        seconds = time.perf_counter() - started
        async with db.session() as session:
            broadcast = await broadcasts.get_broadcast(
                session, org_id=seed.org_id, broadcast_id=broadcast_id
            )
            counts = (broadcast.status, broadcast.recipients_count, broadcast.skipped_count)
    finally:
        await db.dispose()
    if not begun or counts != ("SENDING", seed.scale, 0):
        raise SystemExit(f"fan-out: started {begun}, (status, recipients, skipped) {counts}")
    return {"seconds": round(seconds, 2), "contacts_per_second": round(seed.scale / seconds)}


def run(seed: Seed, *, engine: str) -> dict[str, Any]:
    url = clone(seed, f"fanout-{engine}")
    try:
        result, _ = support.run_loop(_expand(url, seed))
    finally:
        discard(url)
    return {"scenario": "fan-out", "setup": engine, "contacts": seed.scale, **result}
