"""What the benchmarks share: Postfix's smtp-sink, the data they send, and measuring.

- **smtp-sink** (`ensure_postfix`, `smtp_sink`, `sink_counters`): Postfix's sink on a free
  loopback port, installed from Debian's `postfix` package when missing.
- **Data** (`create_contacts`, `email_campaign`; the ~3 KB personalised template and the
  contacts themselves are in bench/data.py, which the peer's virtualenv reads too): made
  through the product's own upsert.
- **Databases** (`fresh_sqlite`, `clone_sqlite`, `new_postgres`, `clone_postgres`): a seed
  database is made once per run and copied for each scenario, so each starts from the same
  state without paying for the contacts again; the standalone scripts make one fresh
  database instead (`fresh_database`, `discard_database`, `standalone_parser`).
- **Measuring** (`peak_rss_mb`, `process_cpu_seconds`, `machine`, `commit`): from /proc.

Imported by bench/quick.py, bench/run.py and the standalone bench/fanout_rules.py and
bench/intake_walr.py, which put the repository root on sys.path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from bench.data import HTML, SUBJECT, TEXT, contact_rows
from tests.support import pgdb

from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import CampaignCreate
from tidings.connections import service as connections
from tidings.connections.schemas import ConnectionCreate
from tidings.contacts import service as contacts
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.settings import Settings
from tidings.templates import service as templates

T = TypeVar("T")
BENCH = Path(__file__).parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
UPSERT_BATCH = 5_000
# The benches' SMTP sinks and HTTP gateways listen on loopback, which Tidings refuses to
# connect to unless the operator opens it (TIDINGS_OUTBOUND_ALLOW, docs/security.md).
OUTBOUND_ALLOW = "127.0.0.0/8"
# Every bench process of one run shares this key: connections' credentials are sealed
# under a key derived from it (docs/security.md), and PostgreSQL requires one.
SECRET_KEY = "bench-secret-key-not-for-production-0123456789"  # noqa: S105


def settings(url: str, **overrides: Any) -> Settings:
    """The settings a bench opens its database with: no migrations on open, the shared
    secret key, loopback opened."""
    values: dict[str, Any] = {
        "database_url": url, "auto_migrate": False, "secret_key": SECRET_KEY,
        "outbound_allow": OUTBOUND_ALLOW,
    }  # fmt: skip
    return Settings(**{**values, **overrides})


# --- py-spy, for --profile ------------------------------------------------------------


def ensure_py_spy() -> str:
    """The path of py-spy, installed into this interpreter's environment (the project's
    .venv under `make bench`) from PyPI when missing: a tool of the benchmark, not a
    dependency of Tidings."""
    here = Path(sys.executable).parent / "py-spy"
    found = shutil.which("py-spy") or (str(here) if here.exists() else None)
    if found is None:
        print("installing py-spy for --profile …", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
        found = str(here)
    return found


# --- Postfix: smtp-sink and smtp-source ------------------------------------------------


def ensure_postfix() -> str:
    """The path of smtp-sink, installing Debian's `postfix` package (as root) if needed;
    smtp-source comes with it."""
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


ensure_smtp_sink = ensure_postfix  # the name bench/quick.py has always used


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, process: subprocess.Popen[Any], what: str, log: Path) -> None:
    """Until 127.0.0.1:port accepts a connection; SystemExit if `process` dies first."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"{what} did not start: {log.read_text(errors='replace')[-3000:]}"
                ) from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[Any], *, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
        wait_for_port(port, process=sink, what="smtp-sink", log=log)
        yield sink
    finally:
        stop_process(sink, timeout=5)


def ehlo_features(port: int) -> list[str]:
    """The ESMTP extensions smtp-sink announces (PIPELINING, 8BITMIME, …)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local", timeout=5) as smtp:
        smtp.ehlo()
        return sorted(name.upper() for name in smtp.esmtp_features)


def sink_counters(log: Path) -> dict[str, int]:
    """The last line of smtp-sink's running counters (-c): sessions, QUITs, messages."""
    with log.open("rb") as out:  # one update per session end, QUIT and message: read the end
        out.seek(max(0, log.stat().st_size - 4096))
        lines = re.findall(rb"sess=(\d+) quit=(\d+) mesg=(\d+)", out.read())
    if not lines:
        return {}
    return dict(zip(("sessions", "quits", "messages"), map(int, lines[-1]), strict=True))


def sink_messages(log: Path) -> int:
    return sink_counters(log).get("messages", 0)


# --- measuring -------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM) of a running process, or of this one, in MB."""
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return round(int(found.group(1)) / 1024, 1) if found else 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit() -> str:
    """The checked-out commit, with `+dirty` when the tree has uncommitted changes."""
    try:
        head = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_loop(coroutine: Coroutine[Any, Any, T]) -> tuple[T, str]:
    """Run under uvloop when it is installed, as `tidings worker` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    return uvloop.run(coroutine), "uvloop"


# --- databases -------------------------------------------------------------------------


def fresh_sqlite(name: str) -> str:
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def sqlite_file(url: str) -> Path:
    return Path(url.partition(":///")[2])


def clone_sqlite(seed_url: str, name: str) -> str:
    """A copy of a seed SQLite database (checkpointed first, so one file holds it all)."""
    source = sqlite_file(seed_url)
    with sqlite3.connect(source) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    url = fresh_sqlite(name)
    shutil.copyfile(source, sqlite_file(url))
    return url


def new_postgres() -> str:
    """A throwaway database on 127.0.0.1:5432 (tests/support/pgdb.py)."""
    try:
        return asyncio.run(pgdb.create())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise SystemExit(
            f"no PostgreSQL server at {pgdb.HOST}:{pgdb.PORT} as {pgdb.USER} ({exc}): start one"
            " (TIDINGS_TEST_PG_HOST, _PORT, _USER name another), or leave PostgreSQL out"
        ) from None


def clone_postgres(seed_url: str) -> str:
    """A throwaway copy of a seed database (`CREATE DATABASE … TEMPLATE`, a file copy)."""

    async def clone() -> str:
        url = await pgdb.create()
        name, seed = url.rsplit("/", 1)[-1], seed_url.rsplit("/", 1)[-1]
        admin = await asyncpg.connect(
            host=pgdb.HOST, port=pgdb.PORT, user=pgdb.USER, database="postgres"
        )
        try:
            await admin.execute(f'DROP DATABASE "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seed}"')
        finally:
            await admin.close()
        return url

    return asyncio.run(clone())


def drop_postgres(url: str) -> None:
    asyncio.run(pgdb.drop(url))


def sent_problems(
    *, status: str, sent_count: int, statuses: dict[str, int], expected: int
) -> list[str]:
    """What is wrong with a broadcast that should have sent `expected` messages: [] when
    it is SENT, every message `sent` and its counter right."""
    problems = []
    if status != "SENT":
        problems.append(f"broadcast is {status}, not SENT")
    if statuses != {"sent": expected}:
        problems.append(f"messages by status {statuses}, expected {{'sent': {expected}}}")
    if sent_count != expected:
        problems.append(f"sent_count {sent_count}, expected {expected}")
    return problems


def fresh_database(name: str, *, postgres: bool) -> str:
    """An empty database for a standalone script: a throwaway PostgreSQL database, or
    `name` under bench/.work."""
    WORK.mkdir(exist_ok=True)
    return new_postgres() if postgres else fresh_sqlite(name)


def discard_database(url: str) -> None:
    """Drop a throwaway PostgreSQL database, or delete a SQLite file and its -wal, -shm."""
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sqlite_file(url)}{suffix}").unlink(missing_ok=True)
    else:
        drop_postgres(url)


def standalone_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every standalone script (fanout_rules.py, intake_walr.py) takes:
    --postgres and --json; the script adds its own."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a throwaway PostgreSQL database on 127.0.0.1:5432 (default: SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


# --- data ------------------------------------------------------------------------------


async def create_contacts(
    db: Database, *, org_id: int, count: int, phones: bool = False, progress: bool = False
) -> None:
    """`count` contacts through the product's bulk upsert, UPSERT_BATCH per transaction."""
    if phones and count > 10_000_000:
        raise SystemExit("at most 10,000,000 contacts with phones (+4179 and 7 digits)")
    started = time.perf_counter()
    for start in range(0, count, UPSERT_BATCH):
        async with db.transaction() as session:
            report = await contacts.upsert_contacts(
                session,
                org_id=org_id,
                rows=contact_rows(start, min(start + UPSERT_BATCH, count), phones=phones),
            )
        if report.errors:
            raise SystemExit(f"contact upsert failed: {report.errors[:3]}")
        done = min(start + UPSERT_BATCH, count)
        if progress and (done % 100_000 == 0 or done == count):
            rate = done / (time.perf_counter() - started)
            print(f"  {done:,} contacts ({rate:,.0f}/s)", file=sys.stderr, flush=True)


async def email_campaign(
    db: Database,
    *,
    org_id: int,
    port: int,
    pool: int,
    concurrency: int | None = None,
    tracking: bool = False,
    name: str = "quick",
    default: bool = True,
) -> tuple[int, int]:
    """The ~3 KB template, an `smtp` connection to 127.0.0.1:port (security "none",
    `pool` connections, the API's default limits unless `concurrency`) and a campaign;
    returns (campaign id, the connection's max_concurrency)."""
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name=name,
            channel="email",
            subject=SUBJECT,
            html=HTML,
            text=TEXT,
        )
    limits = {} if concurrency is None else {"max_concurrency": concurrency}
    async with db.transaction() as session:
        connection = await connections.create_connection(
            session,
            org_id=org_id,
            body=ConnectionCreate(
                **limits,
                name=f"{name} smtp-sink",
                channel="email",
                kind="smtp",
                is_default=default,
                settings={
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "pool_size": pool,
                    "timeout": 30,
                },
            ),
        )
    async with db.transaction() as session:
        campaign = await campaigns.create_campaign(
            session,
            org_id=org_id,
            body=CampaignCreate(
                name=name,
                channel="email",
                template_id=template.id,
                connection_id=connection.id,
                from_name="Acme Éditions",
                from_email="news@acme.example",
                track_opens=tracking,
                track_clicks=tracking,
            ),
        )
    return campaign.id, connection.max_concurrency
