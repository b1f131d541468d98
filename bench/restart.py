"""A database restart costs seconds: a broadcast sent by two `tidings worker` processes on a
throwaway PostgreSQL cluster, undisturbed, then with the cluster restarted --restarts
times (each down for --down seconds), to smtp-sink on loopback (issue 13, item 4).

    python bench/restart.py [--scale 50000] [--restarts 3] [--down 1]

The cluster is made for the run with initdb in a temporary directory, on a free port of
127.0.0.1, run as the `postgres` user when this runs as root (PostgreSQL refuses root),
and deleted at the end. The restarts are spread over the undisturbed run's duration (at
1/(n+1), 2/(n+1), … of it): `pg_ctl stop -m fast`, --down seconds, `pg_ctl start`. The
API answers 503 meanwhile; workers keep their outcomes and go on. Printed, and written
to bench/.work/restart-results.json: each run's seconds, lost and duplicates
(bench/disturbed.py) and the delay. Targets: the restarts delay the broadcast by at most
30 s in all, 0 lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.* and tests.support

from bench import disturbed, support
from bench.cluster import Cluster
from bench.seed import Endpoints, discard, make_seed
from tests.support import pgdb


class Throwaway:
    """A PostgreSQL cluster of its own: initdb, start, stop, restart, delete."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tidings-restart-"))
        self.data = self.directory / "data"
        self.port = support.free_port()
        self.log = support.WORK / "restart-postgres.log"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, self.user)
            command = ("runuser", "-u", self.user, "--", *command)
        subprocess.run(command, check=True, capture_output=True)

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.log, self.user)
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def delete(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Restarter:
    """Restarts `cluster` at the given seconds, each down for `down` seconds."""

    def __init__(self, postgres: Throwaway, at: list[float], down: float) -> None:
        self.postgres = postgres
        self.at = at
        self.down = down
        self.done: list[dict[str, float]] = []

    def __call__(self, elapsed: float, cluster: Cluster) -> None:
        if len(self.done) < len(self.at) and elapsed >= self.at[len(self.done)]:
            began = time.perf_counter()
            self.postgres.stop()
            time.sleep(self.down)
            self.postgres.start()
            self.done.append(
                {"at": round(elapsed, 1), "down_seconds": round(time.perf_counter() - began, 2)}
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=50_000, help="recipients")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--down", type=float, default=1.0, help="seconds down per restart")
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections per worker")
    parser.add_argument("--concurrency", type=int, default=64, help="the connection's limit")
    args = parser.parse_args()
    support.WORK.mkdir(exist_ok=True)
    sink_path = support.ensure_postfix()
    postgres = Throwaway()
    postgres.create()
    pgdb.HOST, pgdb.PORT, pgdb.USER = "127.0.0.1", postgres.port, "postgres"
    port = support.free_port()
    sink_log = support.WORK / "restart-smtp-sink.log"
    endpoints = Endpoints(
        sink_port=port, gateway_url="http://127.0.0.1:9", pool=args.pool,
        concurrency=args.concurrency, sms_batch=1000,
    )  # fmt: skip
    try:
        with support.smtp_sink(sink_path, port, sink_log):
            seed = make_seed("postgres", scale=args.scale, endpoints=endpoints)
            try:
                print("undisturbed …", file=sys.stderr, flush=True)
                calm = disturbed.run(seed, name="restart-calm", sink_log=sink_log)
                print(f"undisturbed: {calm}", file=sys.stderr, flush=True)
                step = calm["seconds"] / (args.restarts + 1)
                restarter = Restarter(
                    postgres, [step * (k + 1) for k in range(args.restarts)], args.down
                )
                print(f"{args.restarts} restarts …", file=sys.stderr, flush=True)
                restarted = disturbed.run(
                    seed, name="restart-restarted", sink_log=sink_log, disturb=restarter
                )
            finally:
                discard(seed.url)
    finally:
        postgres.delete()
    delay = restarted["seconds"] - calm["seconds"]
    report: dict[str, Any] = {
        "scale": args.scale,
        "undisturbed": calm,
        "restarted": {**restarted, "restarts": restarter.done},
        "delay_seconds": round(delay, 2),
        "met": delay <= 30 and restarted["lost"] == 0 and len(restarter.done) == args.restarts,
        "machine": support.machine(),
        "commit": support.commit(),
    }
    (support.WORK / "restart-results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    print(
        f"{args.scale:,} emails, 2 workers on PostgreSQL: undisturbed {calm['seconds']} s;"
        f" {len(restarter.done)} restarts of {args.down:g} s: {restarted['seconds']} s,"
        f" delay {delay:.1f} s (target <= 30 s in all), lost {restarted['lost']} (target 0),"
        f" duplicates {restarted['duplicates']}"
    )


if __name__ == "__main__":
    main()
