"""Email throughput, end to end: a broadcast through the real dispatcher to Postfix's
smtp-sink on loopback.

    python bench/quick.py [--messages 50000] [--pool 8] [--batch 500] [--concurrency N]
                          [--postgres] [--tracking]

It starts `smtp-sink` (installing Debian's `postfix` package when it is missing) on a free
port of 127.0.0.1, creates a fresh database (SQLite under bench/.work, or a throwaway
PostgreSQL database on 127.0.0.1:5432 with --postgres), an org, --messages contacts with
a few attributes, a ~3 KB personalised email template, a default `smtp` connection to the
sink (security "none", --pool connections, the API's default limits unless --concurrency
is given), a campaign and a broadcast to all. Then one `Dispatcher` runs, under uvloop as
`tidings worker` runs it, until the broadcast is SENT.

The clock starts when the broadcast is created and stops when the last outcome is
recorded, so it covers expansion, claims, rendering, MIME, SMTP and the outcome writes.
Every message must end `sent`, the broadcast SENT with sent_count == --messages, and the
sink must have counted as many messages. Results go to bench/.work/quick-results.json.
CPU time is the whole process's (threads included) while sending; peak RSS is the whole
run's, contact set-up included (the peak before sending is reported beside it).
--tracking turns the campaign's open and click tracking on, as `make bench` does.

The full benchmark (`make bench`, bench/run.py) shares its set-up: bench/support.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.support and tests.support

from bench import support
from bench.support import WORK

from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.content.render import Renderer
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.keys.service import create_org
from tidings.outbox.create import count_by_status
from tidings.outbox.models import Message
from tidings.runtime import tune_gc
from tidings.settings import Settings

POLL_SECONDS = 0.1
FINAL = {"SENT", "CANCELLED", "FAILED"}


async def prepare(
    db: Database,
    *,
    messages: int,
    port: int,
    pool: int,
    concurrency: int | None,
    tracking: bool,
) -> tuple[int, int, int]:
    """An org with `messages` contacts, a template, an smtp connection and a campaign;
    returns (org id, campaign id, the connection's max_concurrency)."""
    async with db.transaction() as session:
        org_id = (await create_org(session, name="bench")).org.id
    await support.create_contacts(db, org_id=org_id, count=messages)
    campaign_id, max_concurrency = await support.email_campaign(
        db, org_id=org_id, port=port, pool=pool, concurrency=concurrency, tracking=tracking
    )
    return org_id, campaign_id, max_concurrency


async def dispatch(
    db: Database, *, org_id: int, campaign_id: int, batch: int, give_up_after: float
) -> tuple[int, float]:
    """Create the broadcast and run one dispatcher until the broadcast is final;
    returns its id and the wall time from its creation."""
    # Outcomes written in steps as `tidings worker` writes them on this database.
    config = DispatcherConfig(batch_size=batch, record_every=db.settings.record_every)
    dispatcher = Dispatcher(db, renderer=Renderer(), config=config)
    tune_gc(db.settings.gc_threshold)  # as `tidings worker` does before it sends
    started = time.perf_counter()
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(
            session,
            org_id=org_id,
            body=BroadcastCreate(name="quick", campaign_id=campaign_id, send_to_all=True),
        )
        broadcast = created.broadcast
    # Started after the broadcast exists, so its first tick starts it without an idle sleep.
    stop = asyncio.Event()
    worker = asyncio.create_task(dispatcher.run(stop))
    try:
        while time.perf_counter() - started < give_up_after and not worker.done():
            async with db.session() as session:
                status = await session.scalar(
                    select(Broadcast.status).where(Broadcast.id == broadcast.id)
                )
            if status in FINAL:
                break
            await asyncio.sleep(POLL_SECONDS)
    finally:
        stop.set()
        await worker  # finishes the batch in hand, then QUITs the SMTP connections
    return broadcast.id, time.perf_counter() - started


async def check(
    db: Database, *, org_id: int, broadcast_id: int, messages: int, wall: float
) -> dict[str, Any]:
    """The timings, once every message is sent and counted; else SystemExit saying what
    is wrong."""
    async with db.session() as session:
        broadcast = await broadcasts.get_broadcast(
            session, org_id=org_id, broadcast_id=broadcast_id
        )
        statuses = await count_by_status(session, broadcast_id=broadcast.id)
        last_recorded = await session.scalar(
            select(func.max(Message.finished_at)).where(Message.broadcast_id == broadcast.id)
        )
    problems = support.sent_problems(
        status=broadcast.status,
        sent_count=broadcast.sent_count,
        statuses=statuses,
        expected=messages,
    )
    if problems:
        raise SystemExit(f"after {wall:.1f} s: " + "; ".join(problems))
    assert last_recorded is not None
    # Database timestamps (created_at, finished_at) measure creation → last outcome
    # recorded; the wall clock adds the final finish_broadcasts tick and the QUITs.
    seconds = (last_recorded - broadcast.created_at).total_seconds()
    return {
        "seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "messages_per_second": round(messages / seconds),
        "statuses": statuses,
        "sent_count": broadcast.sent_count,
    }


async def bench(url: str, args: argparse.Namespace, port: int) -> dict[str, Any]:
    db = Database(support.settings(url))
    try:
        set_up = time.perf_counter()
        org_id, campaign_id, concurrency = await prepare(
            db,
            messages=args.messages,
            port=port,
            pool=args.pool,
            concurrency=args.concurrency,
            tracking=args.tracking,
        )
        set_up = time.perf_counter() - set_up
        print(f"set up in {set_up:.1f} s; sending {args.messages:,} emails …", file=sys.stderr)
        rss_before = support.peak_rss_mb()
        cpu = support.cpu_seconds()
        broadcast_id, wall = await dispatch(
            db, org_id=org_id, campaign_id=campaign_id, batch=args.batch, give_up_after=args.timeout
        )
        cpu = support.cpu_seconds() - cpu
        result = await check(
            db, org_id=org_id, broadcast_id=broadcast_id, messages=args.messages, wall=wall
        )
    finally:
        await db.dispose()
    return {
        "max_concurrency": concurrency,
        "setup_seconds": round(set_up, 1),
        **result,
        # CPU time moves less than wall time when other work shares the machine.
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_message": round(cpu / args.messages * 1e6),
        "peak_rss_mb_before_dispatch": rss_before,
        "peak_rss_mb": support.peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections (pool_size)")
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings.model_fields["dispatcher_batch_size"].default,
        help="dispatcher batch size (default: TIDINGS_DISPATCHER_BATCH_SIZE's default)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="the connection's max_concurrency (default: the API's default for a connection)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="give up after this many seconds of sending"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a throwaway PostgreSQL database on 127.0.0.1:5432 (default: SQLite)",
    )
    parser.add_argument(
        "--tracking", action="store_true", help="the campaign tracks opens and clicks"
    )
    args = parser.parse_args()
    if args.messages < 1 or args.batch < 1 or not 1 <= args.pool <= 64:
        parser.error("--messages and --batch must be positive, --pool 1 to 64")
    WORK.mkdir(exist_ok=True)

    sink_path = support.ensure_postfix()
    load_before = os.getloadavg()[0]  # other work on the machine skews the figures
    url = support.new_postgres() if args.postgres else support.fresh_sqlite("quick.db")
    port = support.free_port()
    sink_log = WORK / "quick-smtp-sink.log"
    try:
        migrate.upgrade(url)
        with support.smtp_sink(sink_path, port, sink_log) as sink:
            features = support.ehlo_features(port)
            result, loop = support.run_loop(bench(url, args, port))
            result["sink_cpu_seconds"] = round(support.process_cpu_seconds(sink.pid), 2)
            time.sleep(0.2)  # let the counter reach the log before the sink stops
        counters = support.sink_counters(sink_log)
    finally:
        if args.postgres:
            support.drop_postgres(url)
    # The readiness and EHLO probes are sessions without mail: they add no messages.
    if counters.get("messages") != args.messages:
        raise SystemExit(f"smtp-sink counted {counters}, expected {args.messages} messages")

    report = {
        "engine": url.split("+")[0],
        "messages": args.messages,
        "pool": args.pool,
        "batch": args.batch,
        "loop": loop,
        "tracking": args.tracking,
        "sink_features": features,
        "sink_counters": counters,
        **result,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(report), flush=True)
    print(
        f"{args.messages:,} emails on {report['engine']} (pool {args.pool}, batch {args.batch},"
        f" max_concurrency {result['max_concurrency']}, {loop}):"
        f" {result['messages_per_second']:,} messages/s,"
        f" {result['seconds']} s (wall {result['wall_seconds']} s),"
        f" peak RSS {result['peak_rss_mb']} MB"
    )
    (WORK / "quick-results.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
