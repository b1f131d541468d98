"""`make bench`: every scenario of the performance issue in one run, one table, one JSON.

    python bench/run.py [--scale 1000000] [--only email,sms,fanout,intake,peers] …

Sets up what it needs (Postfix's smtp-sink and smtp-source, installed when missing; the
local Infobip gateway, its capacity measured; django-post-office in bench/.peer-venv), one
smtp-sink for the whole run, a seed database per engine with `--scale` contacts, and
then runs, each on a fresh copy of the seed:

    peers   smtp-source -d (the ceiling), then django-post-office, 1 and 2 processes
    email   a personalised, tracked broadcast to every contact, API call → last message
            in smtp-sink: sqlite-1, postgres-1, postgres-2            (bench/e2e.py)
    sms     the same through Infobip to the local gateway: postgres-2 (bench/e2e.py)
    fanout  expanding a segment of every contact: sqlite, postgres   (bench/fanout.py)
    fanout-rules  the same on contacts of which some are skipped (bench/fanout_rules.py)
    intake  seed 000 invites, 500 recipients, 8 at a time, 60 s: sqlite-1 and postgres-2
            (`tidings serve --workers 2`)                               (bench/intake.py)

A scenario that fails is reported as an error and the others still run. The table goes
to stdout (progress to stderr), every figure to bench/results/<UTC time>-<scale>.json with
the machine, the commit and the scale; logs, the sample message and profiles to
bench/.work/<UTC time>-<scale>-<pid>/. docs/performance.md explains each number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.* and tests.support

from bench import e2e, fanout, intake, peers, report, support
from bench.seed import Endpoints, Seed, discard, make_seed

from tidings.settings import Settings

RESULTS = support.BENCH / "results"
Counter = Callable[[], int]
SCENARIOS = ("peers", "email", "sms", "fanout", "fanout-rules", "intake")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--scale", type=int, default=1_000_000, help="contacts, emails, SMS and fan-out size")
    add("--only", default=",".join(SCENARIOS), help=f"a comma-separated subset of {SCENARIOS}")
    add("--email-setups", default="sqlite-1,postgres-1,postgres-2")
    add("--sms-setups", default="postgres-2")
    add("--fanout-engines", default="sqlite,postgres")
    add(
        "--intake-setups",
        default="sqlite-1,postgres-2",
        help="<engine>-<API processes> (`tidings serve --workers`; SQLite: 1)",
    )
    add("--intake-seconds", type=float, default=60.0)
    add("--peer-messages", type=int, help="django-post-office's N (default: scale, ≤ 100,000)")
    add("--source-sessions", type=int, default=8, help="smtp-source -s")
    add("--pool", type=int, default=8, help="SMTP connections per Tidings process")
    add("--concurrency", type=int, default=64, help="each connection's max_concurrency")
    add("--sms-batch", type=int, default=1000, help="messages per Infobip request")
    add(
        "--batch",
        type=int,
        default=Settings.model_fields["dispatcher_batch_size"].default,
        help="TIDINGS_DISPATCHER_BATCH_SIZE",
    )
    add("--timeout", type=float, default=3600.0, help="give up on one end-to-end run after")
    add("--profile", action="store_true", help="py-spy on every Tidings process (e2e, intake)")
    add("--output", type=Path, help="the JSON file (default: bench/results/<time>-<scale>.json)")
    add("--compare", type=Path, help="results at another scale, for 'memory flat'")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown or args.scale < 1:
        parser.error(f"unknown scenario {sorted(unknown)}, or a scale below 1")
    args.peer_messages = args.peer_messages or min(args.scale, 100_000)
    return args


def split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def engines_needed(args: argparse.Namespace) -> set[str]:
    needed: set[str] = set()
    if "email" in args.only:
        needed |= {e2e.setup_shape(s)[0] for s in split(args.email_setups)}
    if "sms" in args.only:
        needed |= {e2e.setup_shape(s)[0] for s in split(args.sms_setups)}
    if "fanout" in args.only:
        needed |= set(split(args.fanout_engines))
    if "intake" in args.only:
        needed |= {e2e.setup_shape(s)[0] for s in split(args.intake_setups)}
    return needed


def attempt(
    results: list[dict[str, Any]], scenario: str, setup: str, work: Callable[[], Any]
) -> None:
    """Run one scenario; a failure becomes an error row and the run goes on."""
    print(f"· {scenario} {setup} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        produced = work()
    except (SystemExit, Exception) as exc:  # a long run goes on past one broken scenario
        error = str(exc) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, SystemExit):
            traceback.print_exc()
        print(f"  failed: {error}", file=sys.stderr, flush=True)
        results.append({"scenario": scenario, "setup": setup, "error": error[:2000]})
        return
    for result in produced if isinstance(produced, list) else [produced]:
        results.append(result)
        rate = next(
            (result[k] for k in ("messages_per_second", "recipients_per_second") if k in result),
            None,
        )
        summary = f"{rate:,}/s" if rate is not None else f"{result.get('seconds')} s"
        print(f"  {result['setup']}: {summary}", file=sys.stderr, flush=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


def default_compare(scale: int) -> dict[str, Any] | None:
    """The newest 100,000 run when this one is 1,000,000 (for 'memory flat')."""
    if scale != report.MILLION:
        return None
    for path in sorted(RESULTS.glob("*.json"), reverse=True):
        document: dict[str, Any] = json.loads(path.read_text())
        if document.get("scale") == 100_000:
            return document
    return None


@contextmanager
def gateway(port: int) -> Iterator[dict[str, Any]]:
    """bench/gateway.py on 127.0.0.1:port until the block ends; yields its probed capacity."""
    log = support.WORK / "bench-gateway.log"
    script = str(support.BENCH / "gateway.py")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, script, "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        support.wait_for_port(port, process=process, what="gateway", log=log)
        probe = subprocess.run(
            [sys.executable, script, "probe", "--port", str(port)],
            capture_output=True,
            text=True,
            check=True,
        )
        capacity: dict[str, Any] = json.loads(probe.stdout.strip().splitlines()[-1])
        rate = capacity["messages_per_second"]
        print(f"the gateway answers {rate:,} SMS/s (probe)", file=sys.stderr, flush=True)
        yield capacity
    finally:
        support.stop_process(process)


Plan = list[tuple[str, str, Callable[[], Any]]]


def plan(
    args: argparse.Namespace, *, endpoints: Endpoints, seeds: dict[str, Seed], counter: Counter
) -> Plan:
    """(scenario, setup, work) for every scenario after the seeds, in order."""

    def end_to_end(channel: str, setup: str) -> dict[str, Any]:
        email = channel == "email"
        return e2e.run(
            seeds[e2e.setup_shape(setup)[0]],
            setup=setup,
            channel=channel,
            counter=counter if email else e2e.gateway_counter(endpoints.gateway_url),
            batch=args.batch,
            timeout=args.timeout,
            profile=args.profile,
        )

    steps: Plan = []
    if "email" in args.only:
        for setup in split(args.email_setups):
            steps.append(("email end to end", setup, partial(end_to_end, "email", setup)))
    if "peers" in args.only:
        peer = partial(
            peers.post_office,
            port=endpoints.sink_port,
            messages=args.peer_messages,
            processes=(1, 2),
            counter=counter,
        )
        steps.append(("django-post-office", "1 and 2 processes", peer))
    if "sms" in args.only:
        for setup in split(args.sms_setups):
            steps.append(("sms end to end", setup, partial(end_to_end, "sms", setup)))
    if "fanout" in args.only:
        for engine in split(args.fanout_engines):
            steps.append(("fan-out", engine, partial(fanout.run, seeds[engine], engine=engine)))
    if "fanout-rules" in args.only:
        for engine in split(args.fanout_engines):
            steps.append((report.FANOUT_RULES, engine, partial(fanout_rules, args.scale, engine)))
    if "intake" in args.only:
        for setup in split(args.intake_setups):
            engine, workers, _ = e2e.setup_shape(setup)
            work = partial(
                intake.run,
                seeds[engine],
                engine=engine,
                api_processes=max(workers, 1),
                seconds=args.intake_seconds,
                profile=args.profile,
            )
            steps.append(("API intake", setup, work))
    return steps


def fanout_rules(scale: int, engine: str) -> dict[str, Any]:
    """bench/fanout_rules.py: its own contacts (made by SQL), every skip rule in play."""
    from bench import fanout_rules as rules

    result = rules.run(contacts=scale, postgres=engine == "postgres")
    return {**result, "scenario": report.FANOUT_RULES, "setup": engine}


def main() -> None:
    args = arguments()
    RESULTS.mkdir(exist_ok=True)
    started_at = datetime.now(UTC)
    # A work directory of its own, so that runs started side by side do not share files.
    support.WORK = support.WORK / f"{started_at:%Y%m%dT%H%M%SZ}-{args.scale}-{os.getpid()}"
    support.WORK.mkdir(parents=True)
    document: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "commit": support.commit(),
        "machine": support.machine(),
        "scale": args.scale,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "work_dir": str(support.WORK),
    }
    results: list[dict[str, Any]] = []
    seeds: dict[str, Seed] = {}
    sink_path = support.ensure_postfix()
    sink_port, gateway_port = support.free_port(), support.free_port()
    sink_log = support.WORK / "bench-smtp-sink.log"
    counter = e2e.sink_counter(sink_log)
    with support.smtp_sink(sink_path, sink_port, sink_log) as sink, gateway(gateway_port) as probe:
        document["sink_features"] = support.ehlo_features(sink_port)
        document["gateway_capacity"] = probe
        results.append({"scenario": report.GATEWAY, "setup": "probe", **probe})
        document["message_bytes"] = peers.tidings_sample()["message_bytes"]
        if "peers" in args.only:
            source = partial(
                peers.smtp_source,
                port=sink_port,
                messages=args.scale,
                sessions=args.source_sessions,
                counter=counter,
            )
            attempt(results, "smtp-source (ceiling)", f"{args.source_sessions} sessions", source)
        endpoints = Endpoints(
            sink_port=sink_port,
            gateway_url=f"http://127.0.0.1:{gateway_port}",
            pool=args.pool,
            concurrency=args.concurrency,
            sms_batch=args.sms_batch,
        )
        try:
            for engine in sorted(engines_needed(args), reverse=True):  # SQLite first
                seeds[engine] = make_seed(engine, scale=args.scale, endpoints=endpoints)
            document["seeds"] = {engine: seed.as_dict() for engine, seed in seeds.items()}
            for scenario, setup, work in plan(
                args, endpoints=endpoints, seeds=seeds, counter=counter
            ):
                attempt(results, scenario, setup, work)
        finally:
            for seed in seeds.values():
                discard(seed.url)
        document["sink_cpu_seconds"] = round(support.process_cpu_seconds(sink.pid), 2)
    document["sink_counters"] = support.sink_counters(sink_log)
    sink_log.unlink()  # a line per message: 150 MB at a million, and nothing else in it
    finish(document, results, args, started_at)


def finish(
    document: dict[str, Any],
    results: list[dict[str, Any]],
    args: argparse.Namespace,
    started_at: datetime,
) -> None:
    """Judge the targets, write the JSON, print the table."""
    document["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    document["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    document["results"] = results
    compare = json.loads(args.compare.read_text()) if args.compare else default_compare(args.scale)
    rows = report.evaluate(results, scale=args.scale, compare=compare)
    document["targets"] = [row.as_dict() for row in rows]
    output = args.output or RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}-{args.scale}.json"
    output.write_text(json.dumps(document, indent=2) + "\n")
    machine = document["machine"]
    title = (
        f"Tidings benchmark, scale {args.scale:,}, commit {document['commit']},"
        f" {machine['cores']} cores ({machine['cpu_model']}),"
        f" message {document['message_bytes']:,} bytes,"
        f" load average before {document['load_average_before'][0]:.2f}"
    )
    print()
    report.table(rows, title=title, errors=[r for r in results if "error" in r])
    print(f"\nresults: {output}")


if __name__ == "__main__":
    main()
