"""Latency of the bulk contact upsert through the HTTP app, by batch size.

    python bench/upsert_latency.py [--postgres] [--repeat 5]

For 500 and 10,000 rows it posts batches of new contacts, then the same batches again
(updates), through the ASGI app in process (no network), and prints the median per
request. A fresh database each run: SQLite under bench/.work, or a throwaway PostgreSQL
database on 127.0.0.1:5432 with --postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # for tests.support.pgdb

from bench import support  # noqa: E402
from tests.support import pgdb  # noqa: E402

from tidings.app import create_app  # noqa: E402
from tidings.db import migrate  # noqa: E402
from tidings.keys.service import create_org  # noqa: E402


async def measure(url: str, repeat: int) -> None:
    app = create_app(support.settings(url))
    async with app.router.lifespan_context(app):
        async with app.state.db.transaction() as session:
            created = await create_org(session, name="bench")
        headers = {"Authorization": f"Bearer {created.key.secret}"}
        path = f"/v1/orgs/{created.org.id}/contacts"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for size in (500, 10_000):
                for phase in ("new", "existing"):
                    timings = []
                    for rep in range(repeat):
                        rows = [
                            {
                                "email": f"s{size}-r{rep}-{i}@example.com",
                                "first_name": "A",
                                "attributes": {"n": i},
                            }
                            for i in range(size)
                        ]
                        started = time.perf_counter()
                        response = await http.post(path, json={"contacts": rows}, headers=headers)
                        timings.append(time.perf_counter() - started)
                        assert response.status_code == 200, response.text
                    median = statistics.median(timings) * 1000
                    print(
                        f"{url.split('+')[0]:<10} {size:>6} rows {phase:<8} median {median:7.1f} ms"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.postgres:
        url = asyncio.run(pgdb.create())
    else:
        path = HERE / ".work" / "upsert-latency.db"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    try:
        migrate.upgrade(url)
        asyncio.run(measure(url, args.repeat))
    finally:
        if args.postgres:
            asyncio.run(pgdb.drop(url))


if __name__ == "__main__":
    main()
