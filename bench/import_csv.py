"""CSV import benchmark: time and peak memory of `tidings contacts import` by file size.

    python bench/import_csv.py --rows 1000000 [--postgres]

For each size (a tenth of --rows, then --rows) it writes a CSV of personalised rows
(email, names, two attributes), creates a fresh database and org, runs the real CLI import
in a child process and reads that process's peak RSS from the kernel (wait4). Flat memory
means the two peaks are close although one file is ten times the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE.parent))  # for tests.support.pgdb (throwaway PostgreSQL databases)
TIDINGS = [sys.executable, "-m", "tidings"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,first_name,last_name,plan,seats\n")
        for i in range(rows):
            out.write(
                f"user{i}@example.com,First{i},Last{i},{'pro' if i % 3 else 'free'},{i % 50}\n"
            )


def run_import(csv_path: Path, database_url: str) -> dict[str, float]:
    env = {**os.environ, "TIDINGS_DATABASE_URL": database_url}
    subprocess.run([*TIDINGS, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*TIDINGS, "orgs", "create", "bench", "--json"], env=env, check=True, capture_output=True
    )
    started = time.perf_counter()
    child = subprocess.Popen(
        [*TIDINGS, "contacts", "import", str(csv_path), "--org", "bench", "--json"],
        env=env,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"import failed with status {status}")
    report = json.loads(output)
    return {
        "rows": report["rows"],
        "created": report["created"],
        "failed": report["failed"],
        "seconds": round(elapsed, 2),
        "rows_per_second": round(report["rows"] / elapsed),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def fresh_sqlite(name: str) -> str:
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a throwaway PostgreSQL database on 127.0.0.1:5432 per size (default: SQLite)",
    )
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)

    from tests.support import pgdb

    results = []
    for rows in (args.rows // 10, args.rows):
        csv_path = WORK / f"contacts-{rows}.csv"
        if not csv_path.exists():
            write_csv(csv_path, rows)
        url = asyncio.run(pgdb.create()) if args.postgres else fresh_sqlite(f"import-{rows}.db")
        try:
            result = {
                "engine": url.split("+")[0],
                "file_mb": round(csv_path.stat().st_size / 1e6, 1),
            }
            result.update(run_import(csv_path, url))
        finally:
            if args.postgres:
                asyncio.run(pgdb.drop(url))
        results.append(result)
        print(json.dumps(result), flush=True)

    small, large = results
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    print(
        f"peak RSS {small['peak_rss_mb']} MB at {small['rows']:,} rows, "
        f"{large['peak_rss_mb']} MB at {large['rows']:,} rows ({growth:+.0%})"
    )
    engine = "postgresql" if args.postgres else "sqlite"
    (WORK / f"import-results-{engine}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
