"""API intake on its own: seed 000 invite requests against one `tidings serve`.

    python bench/intake_walr.py [--seconds 60] [--concurrency 8] [--size 500]
                                [--workers 1] [--postgres] [--json]

It creates a fresh database (SQLite under bench/.work, or a throwaway PostgreSQL database
on 127.0.0.1:5432 with --postgres), an org with its key and `make bench`'s seed 000
campaign (bench/seed.py: an email template using `{{ invite_link }}`, and `external_id`,
`project_ref` and `survey_ref`, seed 000's campaignId, projectId, surveyId) — then starts
`tidings serve --no-dispatcher` on a free port (uvicorn, one process unless --workers; the
dispatcher is off so the figure is what the API accepts, not what is sent) and drives
--concurrency clients (httpx, in this process, sharing the machine with the server), each
posting `POST /compat/walr/projects/p-1/surveys/s-1/invites` with --size recipients never seen
before (every one a contact created, a list membership and a held message) as soon as
its previous request is answered, for --seconds.

Latency is from just before a request is sent to its full answer; recipients/s is the
sum of the answers' `accepted` over the time from the first request to the last answer.
Every answer must be 202 with every recipient accepted. The server's peak RSS (VmHWM)
and CPU time are read from /proc before it stops; the server's pid is printed at start
(to stderr) so that `py-spy record --pid` can attach.

The load loop and the request body are bench/intake.py's (`make bench`'s API intake,
which runs on a copy of the seed instead and makes one uncounted request first).

`run(...)` returns the result dict; `--json` prints it as one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.*, tests.support

from bench import intake, seed, support
from bench.cluster import Cluster

from tidings.db import migrate
from tidings.db.engine import Database
from tidings.keys.service import create_org


async def prepare(url: str) -> str:
    """Org and the seed 000 campaign; returns the org's API key."""
    db = Database(support.settings(url))
    try:
        async with db.transaction() as session:
            created = await create_org(session, name="intake")
        await seed.invite_campaign(db, org_id=created.org.id)
    finally:
        await db.dispose()
    return created.key.secret


def run(
    *,
    seconds: float = 60.0,
    concurrency: int = 8,
    size: int = 500,
    postgres: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Drive one fresh `tidings serve`; the result dict (SystemExit when requests fail)."""
    load_before = os.getloadavg()[0]
    url = support.fresh_database("intake-walr.db", postgres=postgres)
    try:
        migrate.upgrade(url)
        key = asyncio.run(prepare(url))
        with Cluster(url, name="intake-walr", api_workers=workers) as cluster:
            serve = cluster.processes["serve"].pid
            print(f"tidings serve: pid {serve} on port {cluster.port}", file=sys.stderr, flush=True)
            result = asyncio.run(
                intake.load(
                    cluster.api_url,
                    key,
                    seed.INVITE_CAMPAIGN,
                    seconds=seconds,
                    concurrency=concurrency,
                    size=size,
                    warm=False,
                )
            )
            processes = cluster.measure()
    finally:
        support.discard_database(url)
    if result["errors"]:
        raise SystemExit(f"intake: failed requests {result['errors']}")
    return {
        "scenario": "API intake (seed 000)",
        "engine": "postgresql" if postgres else "sqlite",
        "workers": workers,
        "concurrency": concurrency,
        "recipients_per_request": size,
        **result,
        "server_peak_rss_mb": max(p["peak_rss_mb"] for p in processes.values()),
        "server_cpu_seconds": round(sum(p["cpu_seconds"] for p in processes.values()), 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = support.standalone_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size", type=int, default=500, help="recipients per request")
    parser.add_argument(
        "--workers", type=int, default=1, help="API processes (tidings serve --workers)"
    )
    args = parser.parse_args()
    result = run(
        seconds=args.seconds,
        concurrency=args.concurrency,
        size=args.size,
        postgres=args.postgres,
        workers=args.workers,
    )
    if args.json:
        print(json.dumps(result), flush=True)
        return
    print(
        f"intake on {result['engine']} ({result['workers']} worker(s), concurrency"
        f" {args.concurrency}, {args.size} recipients/request, {result['seconds']} s):"
        f" {result['recipients_per_second']:,} recipients/s, p50 {result['p50_ms']} ms,"
        f" p99 {result['p99_ms']} ms, {result['requests']} requests; server CPU"
        f" {result['server_cpu_seconds']} s, peak RSS {result['server_peak_rss_mb']} MB"
        f" (load {result['load_average']})"
    )


if __name__ == "__main__":
    main()
