"""One broadcast sent by a cluster (`tidings serve --no-dispatcher` + two `tidings worker`
on PostgreSQL) to smtp-sink, while something disturbs it: bench/crash.py kills workers,
bench/restart.py restarts the database.

    run(seed, name=…, sink_log=…, disturb=callback)  → seconds, lost, duplicates, …

The clock starts just before `POST …/broadcasts` (the seed's email campaign, every
contact) and stops when the broadcast is SENT (polled every 0.25 s; a 503 while the
database restarts is a "not yet") and smtp-sink has counted every message. `disturb(t,
cluster)` is called every 0.1 s with the seconds since the start. Then the database says
how many messages are `sent`: lost = recipients not sent; duplicates = messages smtp-sink
received beyond the sent ones (a message is `sent` only once the server accepted it, so
each was received at least once, and every extra copy is a duplicate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench import support
from bench.cluster import Cluster
from bench.seed import Seed, clone, discard

from tidings.db.engine import Database
from tidings.outbox.create import count_by_status

Disturb = Callable[[float, Cluster], None]


async def _statuses(url: str, broadcast_id: int) -> dict[str, int]:
    db = Database(support.settings(url))
    try:
        async with db.session() as session:
            return await count_by_status(session, broadcast_id=broadcast_id)
    finally:
        await db.dispose()


def run(
    seed: Seed,
    *,
    name: str,
    sink_log: Path,
    disturb: Disturb | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """One broadcast to every contact of `seed`, on a fresh copy of it."""
    url = clone(seed, name)
    expected = seed.scale
    try:
        with Cluster(url, name=name, workers=2) as cluster:
            client = httpx.Client(
                base_url=cluster.api_url,
                headers={"Authorization": f"Bearer {seed.api_key}"},
                timeout=30,
            )
            before = support.sink_messages(sink_log)
            started = time.perf_counter()
            created = client.post(
                f"/v1/orgs/{seed.org_id}/broadcasts",
                json={"name": name, "campaign_id": seed.email_campaign_id, "send_to_all": True},
            )
            if created.status_code != 201:
                raise SystemExit(f"{name}: creating the broadcast: {created.text}")
            broadcast_id = created.json()["id"]
            path = f"/v1/orgs/{seed.org_id}/broadcasts/{broadcast_id}"
            next_status, status = 0.0, "SENDING"
            while True:
                elapsed = time.perf_counter() - started
                if disturb is not None:
                    disturb(elapsed, cluster)
                if elapsed >= next_status:
                    next_status = elapsed + 0.25
                    try:
                        answer = client.get(path)
                        if answer.status_code == 200:
                            status = answer.json()["status"]
                    except httpx.TransportError:
                        pass  # the API process is fine; its database may be restarting
                received = support.sink_messages(sink_log) - before
                if status == "SENT" and received >= expected:
                    break
                if status in ("FAILED", "CANCELLED"):
                    raise SystemExit(f"{name}: the broadcast ended {status}")
                if elapsed > timeout:
                    raise SystemExit(f"{name}: gave up after {timeout:.0f} s: {received} received")
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            time.sleep(0.5)  # any copy still on its way reaches the counter
            received = support.sink_messages(sink_log) - before
        statuses, _ = support.run_loop(_statuses(url, broadcast_id))
    finally:
        discard(url)
    sent = statuses.get("sent", 0)
    return {
        "messages": expected,
        "seconds": round(seconds, 2),
        "received": received,
        "statuses": statuses,
        "lost": expected - sent,
        "duplicates": received - sent,
        "duplicates_percent": round(100 * (received - sent) / expected, 3),
    }
