"""API intake: seed 000 invite requests of 500 recipients, 8 at a time, for 60 s.

Against `tidings serve --no-dispatcher` (one process; with PostgreSQL, `make bench` runs
`--workers 2`: two API processes, each with its own socket) on a fresh copy of the seed
database: 8 clients, each sending `POST /compat/walr/projects/p-1/surveys/s-1/invites`
with 500 new recipients (`email`, `first_name`, `store`, `plan` variables; never seen
before, so every one is a contact created, a list membership and a queued invite) as
soon as its previous request was answered, for `seconds`. **Each request's latency** is
from just before it is sent to its full answer; **recipients/s** is the sum of the
answers' `accepted` over the seconds from the first request sent to the last answer.
One request is made before the clock starts (not counted), so the server is warm and the
campaign's recipient list exists.
The dispatcher is off, so the figure is what the API accepts, not what is sent. The load
generator (httpx, in this process) shares the two cores with the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from typing import Any

import httpx
from bench import support
from bench.cluster import Cluster
from bench.seed import INVITE_PATH, Seed, clone, discard

STORES = ("Leeds", "York", "Gent", "Porto", "Lyon")


def body(campaign: str, batch: int, size: int) -> bytes:
    recipients = [
        {
            "variables": {
                "email": f"invitee{batch}-{i}@example.org",
                "first_name": f"Guest{i}",
                "store": STORES[i % len(STORES)],
                "plan": "pro",
            }
        }
        for i in range(size)
    ]
    document = {"campaignId": campaign, "recipients": recipients, "sendTimeUtc": None}
    return json.dumps(document).encode()


async def load(
    api_url: str,
    api_key: str,
    campaign: str,
    *,
    seconds: float,
    concurrency: int,
    size: int,
    warm: bool = True,
) -> dict[str, Any]:
    """`concurrency` clients posting `size` new recipients to `campaign`, each as soon as
    its previous request is answered, for `seconds`; `warm`: one uncounted request first.
    A request that is not a 202 accepting every recipient is counted in `errors`."""
    batches = itertools.count()
    latencies: list[float] = []
    accepted = 0
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:
        # One request before the clock: the server's first-request costs, and the campaign's
        # recipient list, made on first use: the 60 s measure the steady state.
        if warm:
            answer = await client.post(
                INVITE_PATH, content=body(campaign, -1, size), headers=headers
            )
            if answer.status_code != 202:
                raise SystemExit(
                    f"intake: the first request got {answer.status_code}: {answer.text}"
                )
        started = time.perf_counter()
        deadline = started + seconds

        async def one_client() -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                content = body(campaign, next(batches), size)
                sent = time.perf_counter()
                response = await client.post(INVITE_PATH, content=content, headers=headers)
                latencies.append(time.perf_counter() - sent)
                if response.status_code == 202 and response.json()["accepted"] == size:
                    accepted += size
                else:
                    key = f"{response.status_code}: {response.text[:120]}"
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if not latencies:
        raise SystemExit("intake: no request answered")
    ordered = sorted(latencies)
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def ms(value: float) -> float:
        return round(value * 1000, 1)

    return {
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "recipients_accepted": accepted,
        "recipients_per_second": round(accepted / elapsed),
        "p50_ms": ms(statistics.median(ordered)),
        "p99_ms": ms(quantiles[98]) if quantiles else ms(ordered[-1]),
        "max_ms": ms(ordered[-1]),
        "errors": errors,
    }


def run(
    seed: Seed,
    *,
    engine: str,
    seconds: float,
    api_processes: int = 1,
    concurrency: int = 8,
    size: int = 500,
    profile: bool = False,
) -> dict[str, Any]:
    url = clone(seed, f"intake-{engine}")
    try:
        with Cluster(
            url, name=f"intake-{engine}", api_workers=api_processes, profile=profile
        ) as cluster:
            cluster.start_profiling()
            result, _ = support.run_loop(
                load(
                    cluster.api_url,
                    seed.api_key,
                    seed.invite_campaign,
                    seconds=seconds,
                    concurrency=concurrency,
                    size=size,
                )
            )
            processes = cluster.measure()
            profiles = cluster.stop_profiling()
    finally:
        discard(url)
    if result["errors"]:
        raise SystemExit(f"intake-{engine}: failed requests {result['errors']}")
    return {
        "scenario": "API intake",
        "setup": f"{engine}-{api_processes}",
        "api_processes": api_processes,
        "concurrency": concurrency,
        "recipients_per_request": size,
        **result,
        "processes": processes,
        "max_peak_rss_mb": max(p["peak_rss_mb"] for p in processes.values()),
        **({"profiles": profiles} if profiles else {}),
    }
