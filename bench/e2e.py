"""End to end: a broadcast to every contact, from the API call to the last message accepted.

Setups: `sqlite-1` is one `tidings serve` process with its embedded dispatcher (the
default deployment); `postgres-N` is `tidings serve --no-dispatcher` plus N
`tidings worker` processes.

For each run: a fresh copy of the seed database, the processes started and idle, then
**the clock starts** just before `POST /v1/orgs/{org}/broadcasts` (the seed's campaign,
`send_to_all`) and **stops** when the receiver has counted every message: smtp-sink's
own counter for email (its log, read every 20 ms), the gateway's `GET /stats` for SMS.
`seconds_to_sent` is when `GET …/broadcasts/{id}` first answered SENT (every outcome
recorded; polled every 0.25 s). Then each process's peak RSS (VmHWM) and CPU time are
read, the processes stopped, and the database checked: every message `sent`, the
broadcast's sent_count right, and the receiver's count exactly the broadcast's size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench import support
from bench.cluster import Cluster
from bench.seed import Seed, clone, discard

from tidings.broadcasts.models import Broadcast
from tidings.db.engine import Database
from tidings.outbox.create import count_by_status

COUNT_EVERY = 0.02
STATUS_EVERY = 0.25


def gateway_counter(gateway_url: str) -> Callable[[], int]:
    client = httpx.Client(base_url=gateway_url, timeout=5)
    return lambda: int(client.get("/stats").json()["messages"])


def sink_counter(log: Path) -> Callable[[], int]:
    return lambda: support.sink_messages(log)


def setup_shape(setup: str) -> tuple[str, int, bool]:
    """ "sqlite-1" → ("sqlite", 0 workers, embedded); "postgres-2" → ("postgres", 2, False)."""
    engine, _, count = setup.partition("-")
    if engine == "sqlite":
        if count != "1":
            raise SystemExit("SQLite runs one process: sqlite-1")
        return engine, 0, True
    return engine, int(count), False


async def _verify(url: str, broadcast_id: int, expected: int) -> dict[str, Any]:
    db = Database(support.settings(url))
    try:
        async with db.session() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            statuses = await count_by_status(session, broadcast_id=broadcast_id)
            assert broadcast is not None
            first_last = (broadcast.created_at, broadcast.completed_at)
    finally:
        await db.dispose()
    problems = support.sent_problems(
        status=broadcast.status,
        sent_count=broadcast.sent_count,
        statuses=statuses,
        expected=expected,
    )
    created, completed = first_last
    return {
        "problems": problems,
        "statuses": statuses,
        "db_seconds": round((completed - created).total_seconds(), 2) if completed else None,
    }


def run(
    seed: Seed,
    *,
    setup: str,
    channel: str,
    counter: Callable[[], int],
    batch: int | None,
    timeout: float,
    profile: bool = False,
) -> dict[str, Any]:
    """One end-to-end run; SystemExit when a message is missing or not `sent`."""
    engine, workers, embedded = setup_shape(setup)
    if engine != seed.url.split("+")[0].replace("postgresql", "postgres"):
        raise SystemExit(f"{setup} needs a {engine} seed")
    name = f"{channel}-{setup}"
    url = clone(seed, name)
    campaign_id = seed.email_campaign_id if channel == "email" else seed.sms_campaign_id
    expected = seed.scale
    try:
        cluster = Cluster(
            url, name=name, workers=workers, embedded=embedded, batch=batch, profile=profile
        )
        with cluster:
            client = httpx.Client(
                base_url=cluster.api_url,
                headers={"Authorization": f"Bearer {seed.api_key}"},
                timeout=30,
            )
            before = counter()
            load = os.getloadavg()[0]
            idle = cluster.measure()
            cluster.start_profiling()
            started = time.perf_counter()
            created = client.post(
                f"/v1/orgs/{seed.org_id}/broadcasts",
                json={"name": name, "campaign_id": campaign_id, "send_to_all": True},
            )
            api_seconds = time.perf_counter() - started
            if created.status_code != 201:
                raise SystemExit(f"{name}: creating the broadcast: {created.text}")
            broadcast_id = created.json()["id"]
            last = sent = None
            next_status = 0.0
            while True:
                now = time.perf_counter()
                if last is None and counter() - before >= expected:
                    last = now
                if now >= next_status:
                    next_status = now + STATUS_EVERY
                    status = client.get(f"/v1/orgs/{seed.org_id}/broadcasts/{broadcast_id}").json()[
                        "status"
                    ]
                    if status == "SENT":
                        sent = time.perf_counter()
                    elif status in ("FAILED", "CANCELLED"):
                        raise SystemExit(f"{name}: the broadcast ended {status}")
                    cluster.check_alive()
                if last is not None and sent is not None:
                    break
                if now - started > timeout:
                    raise SystemExit(
                        f"{name}: gave up after {timeout:.0f} s:"
                        f" {counter() - before} of {expected} received"
                    )
                time.sleep(COUNT_EVERY)
            processes = cluster.measure()
            profiles = cluster.stop_profiling()
            for label, process in processes.items():
                process["cpu_seconds_run"] = round(
                    process["cpu_seconds"] - idle[label]["cpu_seconds"], 2
                )
            received = counter() - before
    except BaseException:
        discard(url)
        raise
    checked, _ = support.run_loop(_verify(url, broadcast_id, expected))
    discard(url)
    if received != expected:
        checked["problems"].append(f"the receiver counted {received}, expected {expected}")
    if checked["problems"]:
        raise SystemExit(f"{name}: " + "; ".join(checked["problems"]))
    seconds = last - started
    return {
        "scenario": f"{channel} end to end",
        "setup": setup,
        "messages": expected,
        "seconds": round(seconds, 2),
        "messages_per_second": round(expected / seconds),
        "seconds_to_sent": round(sent - started, 2),
        "api_call_seconds": round(api_seconds, 3),
        "db_seconds_created_to_completed": checked["db_seconds"],
        "processes": processes,
        "max_peak_rss_mb": max(p["peak_rss_mb"] for p in processes.values()),
        "cpu_us_per_message": round(
            sum(p["cpu_seconds_run"] for p in processes.values()) / expected * 1e6
        ),
        "load_average_before": round(load, 2),
        **({"profiles": profiles} if profiles else {}),
    }
