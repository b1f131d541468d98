"""A crash costs seconds: a broadcast sent by two `tidings worker` processes on PostgreSQL,
undisturbed, then with one worker SIGKILLed every --kill-every seconds (and started again
at once, the two in turn), to smtp-sink on loopback (issue 13, item 3).

    python bench/crash.py [--scale 100000] [--kill-every 5] [--trace]

Both runs send the same broadcast (the seed's email campaign to every contact: bench/seed.py,
as `make bench`) on a fresh copy of one seed, with the product's default settings (a
worker is dead after TIDINGS_WORKER_DEAD_AFTER_SECONDS of silence, 10 s). Printed, and
written to bench/.work/crash-results.json: each run's seconds, lost and duplicates
(bench/disturbed.py), the kills, and the ratio. Targets: within 2x the undisturbed time,
0 lost, duplicates <= 1%.

--trace has the killed run's workers write what they do, message by message
(bench/tracing/sitecustomize.py), and tells for each kill where its duplicates came from:
outcomes the worker had read from smtp-sink but not written down (in the record step
under way, or waiting behind it), and messages on the wire (content written, no reply).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.* and tests.support

from bench import disturbed, support
from bench.cluster import Cluster
from bench.seed import Endpoints, discard, make_seed


class Killer:
    """Kills worker1, then worker2, … every `every` seconds (each started again at once)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.kills: list[float] = []
        self.killed: dict[int, float] = {}  # pid → when (epoch seconds)

    def __call__(self, elapsed: float, cluster: Cluster) -> None:
        if elapsed >= self.every * (len(self.kills) + 1):
            label = f"worker{len(self.kills) % 2 + 1}"
            self.killed[cluster.processes[label].pid] = time.time()
            cluster.kill_worker(label)
            self.kills.append(round(elapsed, 1))


def traced(directory: Path, killed: dict[int, float]) -> dict[str, Any]:
    """For each killed worker's trace: its outcomes read but not written down (and of
    those, how many were in the record step under way), and its messages on the wire."""
    kills = []
    for pid in sorted(killed, key=killed.__getitem__):
        path = directory / f"trace-{pid}.log"
        if not path.exists():
            continue
        handed: set[int] = set()
        answered: set[int] = set()
        written: set[int] = set()
        in_write = 0
        for line in path.read_text().splitlines():
            kind, _, *rest = line.split()
            if kind == "H":
                handed.add(int(rest[0]))
            elif kind == "A" and rest[1] != "d":  # a reply (deferred: never handed over)
                answered.add(int(rest[0]))
            elif kind == "WS":
                in_write = int(rest[0])
            elif kind == "WE":
                written.update(map(int, rest[1:]))
                in_write = 0
        kills.append({
            "pid": pid, "answered_unwritten": len((answered & handed) - written),
            "in_write": in_write, "on_wire": len(handed - answered),
        })  # fmt: skip
    totals = {
        name: sum(kill[name] for kill in kills)
        for name in ("answered_unwritten", "in_write", "on_wire")
    }
    return {"kills": kills, "totals": totals}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=100_000, help="recipients")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kills")
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections per worker")
    parser.add_argument("--concurrency", type=int, default=64, help="the connection's limit")
    parser.add_argument("--trace", action="store_true", help="trace the killed run's workers")
    args = parser.parse_args()
    support.WORK.mkdir(exist_ok=True)
    sink_path = support.ensure_postfix()
    port = support.free_port()
    sink_log = support.WORK / "crash-smtp-sink.log"
    endpoints = Endpoints(
        sink_port=port, gateway_url="http://127.0.0.1:9", pool=args.pool,
        concurrency=args.concurrency, sms_batch=1000,
    )  # fmt: skip
    with support.smtp_sink(sink_path, port, sink_log):
        seed = make_seed("postgres", scale=args.scale, endpoints=endpoints)
        try:
            print("undisturbed …", file=sys.stderr, flush=True)
            calm = disturbed.run(seed, name="crash-calm", sink_log=sink_log)
            print(f"undisturbed: {calm}", file=sys.stderr, flush=True)
            killer = Killer(args.kill_every)
            trace_dir = support.WORK / "crash-trace"
            if args.trace:
                trace_dir.mkdir(exist_ok=True)
                for old in trace_dir.glob("trace-*.log"):
                    old.unlink()
                os.environ["TIDINGS_BENCH_TRACE_DIR"] = str(trace_dir)
                tracing = str(Path(__file__).parent / "tracing")
                os.environ["PYTHONPATH"] = os.pathsep.join(
                    filter(None, [tracing, os.environ.get("PYTHONPATH")])
                )
            print(f"a worker SIGKILLed every {args.kill_every} s …", file=sys.stderr, flush=True)
            killed = disturbed.run(seed, name="crash-killed", sink_log=sink_log, disturb=killer)
        finally:
            discard(seed.url)
    ratio = killed["seconds"] / calm["seconds"]
    report: dict[str, Any] = {
        "scale": args.scale,
        "kill_every": args.kill_every,
        "undisturbed": calm,
        "killed": {**killed, "kills": killer.kills},
        "ratio": round(ratio, 2),
        "met": ratio <= 2 and killed["lost"] == 0 and killed["duplicates_percent"] <= 1,
        **({"trace": traced(trace_dir, killer.killed)} if args.trace else {}),
        "machine": support.machine(),
        "commit": support.commit(),
    }
    (support.WORK / "crash-results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    print(
        f"{args.scale:,} emails, 2 workers on PostgreSQL: undisturbed {calm['seconds']} s;"
        f" a worker killed every {args.kill_every:g} s ({len(killer.kills)} kills):"
        f" {killed['seconds']} s = {ratio:.2f}x (target <= 2x), lost {killed['lost']}"
        f" (target 0), duplicates {killed['duplicates']} = {killed['duplicates_percent']}%"
        f" (target <= 1%)"
    )


if __name__ == "__main__":
    main()
