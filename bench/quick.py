"""Email throughput, end to end: a broadcast through the real dispatcher to Postfix's
smtp-sink on loopback.

    python bench/quick.py [--messages 50000] [--pool 8] [--batch 500] [--concurrency N]
                          [--postgres]

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import re
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

HERE = Path(__file__).parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE.parent))  # for tests.support.pgdb (throwaway PostgreSQL databases)

from tests.support import pgdb  # noqa: E402

from tidings.broadcasts import service as broadcasts  # noqa: E402
from tidings.broadcasts.models import Broadcast  # noqa: E402
from tidings.broadcasts.schemas import BroadcastCreate  # noqa: E402
from tidings.campaigns import service as campaigns  # noqa: E402
from tidings.campaigns.schemas import CampaignCreate  # noqa: E402
from tidings.connections import service as connections  # noqa: E402
from tidings.connections.schemas import ConnectionCreate  # noqa: E402
from tidings.contacts import service as contacts  # noqa: E402
from tidings.content.render import Renderer  # noqa: E402
from tidings.db import migrate  # noqa: E402
from tidings.db.engine import Database  # noqa: E402
from tidings.dispatcher import queries  # noqa: E402
from tidings.dispatcher.worker import Dispatcher, DispatcherConfig  # noqa: E402
from tidings.messages.models import Message  # noqa: E402
from tidings.orgs.service import create_org  # noqa: E402
from tidings.settings import Settings  # noqa: E402
from tidings.templates import service as templates  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
UPSERT_BATCH = 5_000
POLL_SECONDS = 0.1
FINAL = {"SENT", "CANCELLED", "FAILED"}
PLANS = ("free", "starter", "pro", "enterprise")
CITIES = ("Lyon", "Zürich", "Porto", "Kraków", "Leeds", "Gent", "Turku")
FIRST_NAMES = ("Ada", "Zoë", "Grace", "José", "Linus", "Margaret", "Søren", "Alan")

SUBJECT = "{{ first_name }}, your {{ plan }} plan in {{ city }}: {{ seats }} seats to {{ renews }}"
PARAGRAPH = (
    '<p style="font-family: Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5;'
    ' color: #333333; margin: 0 0 16px 0;">Your team at {{ company }} has {{ seats }} seats on'
    " the {{ plan }} plan. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do"
    " eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>\n"
)
HTML = (
    "<!doctype html>\n<html><body>\n<h1>Hello {{ first_name }} {{ last_name }}</h1>\n"
    + PARAGRAPH * 5
    + '<p>Account: <a href="https://acme.example/a/{{ contact.email }}">{{ email }}</a>'
    " · {{ city }} · renews {{ renews }}</p>\n</body></html>\n"
)
TEXT = (
    "Hello {{ first_name }} {{ last_name }},\n\n"
    + "Your team at {{ company }} has {{ seats }} seats on the {{ plan }} plan. Lorem ipsum"
    " dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\n\n"
    * 3
    + "Account: {{ email }} · {{ city }} · renews {{ renews }}\n"
)


# --- smtp-sink -------------------------------------------------------------------------


def ensure_smtp_sink() -> str:
    """The path of smtp-sink, installing Debian's `postfix` package (as root) if needed."""
    found = shutil.which("smtp-sink") or (SMTP_SINK if os.access(SMTP_SINK, os.X_OK) else None)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "smtp-sink is missing; install Postfix as root: apt-get update && "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix"
        )
    print("smtp-sink missing: installing postfix with apt-get …", file=sys.stderr, flush=True)
    # "No configuration" keeps the package from setting up (and starting) a real MTA.
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    preseed = "postfix postfix/main_mailer_type select No configuration\n"
    steps = (
        (["debconf-set-selections"], preseed),
        (["apt-get", "update"], None),
        (["apt-get", "install", "-y", "--no-install-recommends", "postfix"], None),
    )
    for command, stdin in steps:
        done = subprocess.run(command, input=stdin, env=env, text=True, capture_output=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise SystemExit(f"could not install postfix: {' '.join(command)} failed\n{tail}")
    if not os.access(SMTP_SINK, os.X_OK):
        raise SystemExit(f"postfix installed but {SMTP_SINK} is not there")
    return SMTP_SINK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_sink(path: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """smtp-sink on 127.0.0.1:port until the block ends.

    -c counts delivered messages on stdout (checked against Tidings' own count); -m 256
    concurrent sessions (far above any pool); -u names the user it drops to after binding,
    which it requires when started as root; 1000 is the listen backlog.
    """
    user = pwd.getpwuid(os.geteuid()).pw_name
    command = [path, "-c", "-m", "256", "-u", user, f"127.0.0.1:{port}", "1000"]
    with log.open("wb") as out:
        sink = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if sink.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"smtp-sink did not start: {log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        yield sink
    finally:
        sink.send_signal(signal.SIGTERM)
        try:
            sink.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()


def ehlo_features(port: int) -> list[str]:
    """The ESMTP extensions smtp-sink announces (PIPELINING, 8BITMIME, …)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=5) as smtp:
        smtp.ehlo()
        return sorted(name.upper() for name in smtp.esmtp_features)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sink_counters(log: Path) -> dict[str, int]:
    """The last line of smtp-sink's running counters (-c): sessions, QUITs, messages."""
    with log.open("rb") as out:  # one update per session end, QUIT and message: read the end
        out.seek(max(0, log.stat().st_size - 4096))
        lines = re.findall(rb"sess=(\d+) quit=(\d+) mesg=(\d+)", out.read())
    if not lines:
        return {}
    return dict(zip(("sessions", "quits", "messages"), map(int, lines[-1]), strict=True))


# --- the database ----------------------------------------------------------------------


def fresh_sqlite(name: str) -> str:
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def contact_rows(start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {
            "email": f"user{i}@example.com",
            "first_name": f"{FIRST_NAMES[i % len(FIRST_NAMES)]}{i}",
            "last_name": f"Last{i}",
            "attributes": {
                "plan": PLANS[i % len(PLANS)],
                "seats": i % 50 + 1,
                "city": CITIES[i % len(CITIES)],
                "company": f"Company {i % 997}",
                "renews": f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
            },
        }
        for i in range(start, stop)
    ]


async def prepare(
    db: Database, *, messages: int, port: int, pool: int, concurrency: int | None
) -> tuple[int, int, int]:
    """An org with `messages` contacts, a template, an smtp connection and a campaign;
    returns (org id, campaign id, the connection's max_concurrency)."""
    async with db.session() as session:
        org_id = (await create_org(session, name="bench")).org.id
    for start in range(0, messages, UPSERT_BATCH):
        async with db.session() as session:
            report = await contacts.upsert_contacts(
                session,
                org_id=org_id,
                rows=contact_rows(start, min(start + UPSERT_BATCH, messages)),
            )
        if report.errors:
            raise SystemExit(f"contact upsert failed: {report.errors[:3]}")
    async with db.session() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name="quick",
            channel="email",
            subject=SUBJECT,
            html=HTML,
            text=TEXT,
        )
    limits = {} if concurrency is None else {"max_concurrency": concurrency}
    async with db.session() as session:
        connection = await connections.create_connection(
            session,
            org_id=org_id,
            body=ConnectionCreate(
                **limits,
                name="smtp-sink",
                channel="email",
                kind="smtp",
                is_default=True,
                settings={
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "pool_size": pool,
                    "timeout": 30,
                },
            ),
        )
    async with db.session() as session:
        campaign = await campaigns.create_campaign(
            session,
            org_id=org_id,
            body=CampaignCreate(
                name="quick",
                channel="email",
                template_id=template.id,
                from_name="Acme Éditions",
                from_email="news@acme.example",
            ),
        )
    return org_id, campaign.id, connection.max_concurrency


async def dispatch(
    db: Database, *, org_id: int, campaign_id: int, batch: int, give_up_after: float
) -> tuple[int, float]:
    """Create the broadcast and run one dispatcher until the broadcast is final;
    returns its id and the wall time from its creation."""
    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=batch))
    started = time.perf_counter()
    async with db.session() as session:
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
        statuses = await queries.count_by_status(session, broadcast_id=broadcast.id)
        last_recorded = await session.scalar(
            select(func.max(Message.finished_at)).where(Message.broadcast_id == broadcast.id)
        )
    problems = []
    if broadcast.status != "SENT":
        problems.append(f"broadcast is {broadcast.status}, not SENT")
    if statuses != {"sent": messages}:
        problems.append(f"messages by status {statuses}, expected {{'sent': {messages}}}")
    if broadcast.sent_count != messages:
        problems.append(f"sent_count {broadcast.sent_count}, expected {messages}")
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


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def bench(url: str, args: argparse.Namespace, port: int) -> dict[str, Any]:
    db = Database(Settings(database_url=url, auto_migrate=False))
    try:
        set_up = time.perf_counter()
        org_id, campaign_id, concurrency = await prepare(
            db, messages=args.messages, port=port, pool=args.pool, concurrency=args.concurrency
        )
        set_up = time.perf_counter() - set_up
        print(f"set up in {set_up:.1f} s; sending {args.messages:,} emails …", file=sys.stderr)
        rss_before = peak_rss_mb()
        cpu = cpu_seconds()
        broadcast_id, wall = await dispatch(
            db, org_id=org_id, campaign_id=campaign_id, batch=args.batch, give_up_after=args.timeout
        )
        cpu = cpu_seconds() - cpu
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
        "peak_rss_mb": peak_rss_mb(),
    }


def run(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Run under uvloop when it is installed, as `tidings worker` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    return uvloop.run(coroutine), "uvloop"


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
    args = parser.parse_args()
    if args.messages < 1 or args.batch < 1 or not 1 <= args.pool <= 64:
        parser.error("--messages and --batch must be positive, --pool 1 to 64")
    WORK.mkdir(exist_ok=True)

    sink_path = ensure_smtp_sink()
    load_before = os.getloadavg()[0]  # other work on the machine skews the figures
    url = asyncio.run(pgdb.create()) if args.postgres else fresh_sqlite("quick.db")
    port = free_port()
    sink_log = WORK / "quick-smtp-sink.log"
    try:
        migrate.upgrade(url)
        with smtp_sink(sink_path, port, sink_log) as sink:
            features = ehlo_features(port)
            result, loop = run(bench(url, args, port))
            result["sink_cpu_seconds"] = round(process_cpu_seconds(sink.pid), 2)
            time.sleep(0.2)  # let the counter reach the log before the sink stops
        counters = sink_counters(sink_log)
    finally:
        if args.postgres:
            asyncio.run(pgdb.drop(url))
    # The readiness and EHLO probes are sessions without mail: they add no messages.
    if counters.get("messages") != args.messages:
        raise SystemExit(f"smtp-sink counted {counters}, expected {args.messages} messages")

    report = {
        "engine": url.split("+")[0],
        "messages": args.messages,
        "pool": args.pool,
        "batch": args.batch,
        "loop": loop,
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
