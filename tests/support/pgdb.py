"""Create or drop a throwaway PostgreSQL database for a test run (used by .ci/run).

python -m tests.support.pgdb create   → prints its SQLAlchemy URL, exit 1 if no server
python -m tests.support.pgdb drop URL
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

import asyncpg

HOST = os.environ.get("TIDINGS_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("TIDINGS_TEST_PG_PORT", "5432"))
USER = os.environ.get("TIDINGS_TEST_PG_USER", "postgres")


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=HOST, port=PORT, user=USER, database="postgres", timeout=5)


async def create() -> str:
    name = f"tidings_test_{secrets.token_hex(4)}"
    connection = await _admin()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{name}"


async def drop(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    if not name.startswith("tidings_test_"):
        raise SystemExit(f"refusing to drop {name!r}: not a throwaway test database")
    connection = await _admin()
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> int:
    if sys.argv[1:2] == ["create"]:
        try:
            print(asyncio.run(create()))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            print(f"no PostgreSQL server: {exc}", file=sys.stderr)
            return 1
        return 0
    if sys.argv[1:2] == ["drop"] and len(sys.argv) == 3:
        asyncio.run(drop(sys.argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
