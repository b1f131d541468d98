"""The last look's cost for erased people: `suppressions.erased.restore` on one claimed
batch.

    python bench/erased_lookup.py [--batch 2000] [--suppressions 100000] [--postgres] [--json]

The dispatcher's claim step hashes each claimed recipient and looks the hashes up among
the org's hashed suppressions (docs/privacy.md). On a fresh database with --suppressions
suppressions in one org, this times `restore` on a batch of --batch recipients (none of
them suppressed, the usual case) three times, twice: when the org's suppressions are all
hashed (erased people), and when none is (the guard's probe only). Prints the best of
three in milliseconds for each.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.support

from bench import support

from tidings.db import migrate
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.keys.service import create_org
from tidings.suppressions import erased

_SERIES = {
    "sqlite": "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)",
    "postgresql": "WITH seq(i) AS (SELECT generate_series(1, :n))",
}
_SUPPRESSIONS = """
{series}
INSERT INTO suppressions (org_id, channel, address, reason, source, created_at)
SELECT :org_id, 'email', {address}, 'complaint', 'bench', :now FROM seq
"""


async def _best(db: Database, org_id: int, batch: int) -> float:
    recipients = [(org_id, "email", f"user{i}@example.com") for i in range(batch)]
    times = []
    for _ in range(3):
        async with db.transaction() as session:
            started = time.perf_counter()
            await erased.restore(session, key=b"k" * 32, recipients=recipients)
            times.append(time.perf_counter() - started)
    return round(min(times) * 1000, 2)


async def _bench(url: str, *, batch: int, suppressions: int) -> dict[str, Any]:
    db = Database(support.settings(url))
    series = _SERIES[db.engine.dialect.name]
    result = {}
    try:
        for case, address in (("hashed", "'erased:' || i"), ("plain", "'s' || i || '@x.example'")):
            async with db.transaction() as session:
                org_id = (await create_org(session, name=case)).org.id
                await session.execute(
                    text(_SUPPRESSIONS.format(series=series, address=address)),
                    {"n": suppressions, "org_id": org_id, "now": utcnow().replace(tzinfo=None)},
                )
            result[f"{case}_ms"] = await _best(db, org_id, batch)
    finally:
        await db.dispose()
    return result


def main() -> None:
    parser = support.standalone_parser(__doc__)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    args = parser.parse_args()
    url = support.fresh_database("erased-lookup.db", postgres=args.postgres)
    try:
        migrate.upgrade(url)
        result = {
            "scenario": "last look, erased people",
            "engine": "postgresql" if args.postgres else "sqlite",
            "batch": args.batch,
            "suppressions": args.suppressions,
            **asyncio.run(_bench(url, batch=args.batch, suppressions=args.suppressions)),
        }
    finally:
        support.discard_database(url)
    if args.json:
        print(json.dumps(result), flush=True)
        return
    print(
        f"restore on a batch of {args.batch:,} ({result['engine']}, {args.suppressions:,}"
        f" suppressions): {result['hashed_ms']} ms when they are hashed,"
        f" {result['plain_ms']} ms when none is"
    )


if __name__ == "__main__":
    main()
