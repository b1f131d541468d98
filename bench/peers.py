"""Side by side, on the same smtp-sink with the same message: the machine's ceiling
(Postfix's `smtp-source`) and a Python peer (django-post-office).

- `tidings_sample()` sends one message of the seed's email campaign (tracking on) through
  the real dispatcher to a recording SMTP server (tests/support/smtp_server.py) and
  returns its bytes: the message size every side sends, and smtp-source's `-F` file.
- `smtp_source()` runs `smtp-source -d -s S -m N -F sample.eml`: N copies of that
  message over S sessions that each stay connected (`-d`); clocked around the process.
- `post_office()` queues N personalised mails with django-post-office's API and sends
  them with its `send_queued_mail` command, with one and with two processes, from its own
  virtualenv (bench/.peer-venv, made on first use, git-ignored) and its own throwaway
  PostgreSQL database; see bench/peer_post_office.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import support
from bench.data import contact_rows
from tests.support.smtp_server import SmtpServer

from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.dispatcher.run import build_worker
from tidings.keys.service import create_org
from tidings.settings import Settings

PEER_VENV = support.BENCH / ".peer-venv"
PEER_PACKAGES = ("Django==5.2.19", "django-post-office==3.12.0", "psycopg[binary]==3.3.9")
PEER_SCRIPT = support.BENCH / "peer_post_office.py"


async def _sample() -> bytes:
    server = SmtpServer()
    await server.start()
    url = support.fresh_sqlite("sample.db")
    await migrate.upgrade_async(url)
    settings = Settings(
        database_url=url,
        auto_migrate=False,
        secret_key="bench-secret-key-not-for-production-0123456789",  # noqa: S106
        outbound_allow=support.OUTBOUND_ALLOW,
    )
    db = Database(settings)
    try:
        async with db.transaction() as session:
            org_id = (await create_org(session, name="sample")).org.id
        await support.create_contacts(db, org_id=org_id, count=1)
        campaign_id, _ = await support.email_campaign(
            db, org_id=org_id, port=server.port, pool=1, tracking=True, name="bench email"
        )
        async with db.transaction() as session:
            created = await broadcasts.create_broadcast(
                session,
                org_id=org_id,
                body=BroadcastCreate(name="sample", campaign_id=campaign_id, send_to_all=True),
            )
        dispatcher = build_worker(settings, db)
        await dispatcher.drain()
        await dispatcher.close()
        async with db.session() as session:
            broadcast = await session.get(Broadcast, created.broadcast.id)
            status = broadcast.status if broadcast else None
    finally:
        await db.dispose()
        await server.stop()
    if status != "SENT" or len(server.received) != 1:
        raise SystemExit(f"sample: broadcast {status}, {len(server.received)} messages received")
    return server.received[0].content


def tidings_sample() -> dict[str, Any]:
    """One message as Tidings sends it; written to sample.eml for smtp-source."""
    content, _ = support.run_loop(_sample())
    support.fresh_sqlite("sample.db")  # removes it
    row = contact_rows(0, 1)[0]
    if row["first_name"].encode() not in content or b"/l/" not in content:
        raise SystemExit("sample: the message lacks its personalisation or a tracked link")
    # smtp-source -F ends each line with CRLF itself.
    sample().write_bytes(content.replace(b"\r\n", b"\n"))
    return {"message_bytes": len(content), "file": str(sample())}


def sample() -> Path:
    """The file of `tidings_sample`'s message (in this run's work directory)."""
    return support.WORK / "sample.eml"


def smtp_source(
    *, port: int, messages: int, sessions: int, counter: Callable[[], int]
) -> dict[str, Any]:
    before = counter()
    command = [
        support.SMTP_SOURCE,
        "-d",  # one connection per session, kept for all its messages
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-F",
        str(sample()),
        "-f",
        "news@acme.example",
        "-t",
        "user0@example.com",
        "-M",
        "bench.local",
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"smtp-source failed: {done.stderr[-2000:]}")
    time.sleep(0.1)  # the sink's counter line for the last message
    received = counter() - before
    if received != messages:
        raise SystemExit(f"smtp-source: the sink counted {received}, expected {messages}")
    return {
        "scenario": "smtp-source (ceiling)",
        "setup": f"{sessions} sessions",
        "messages": messages,
        "seconds": round(seconds, 2),
        "messages_per_second": round(messages / seconds),
    }


def ensure_peer_venv() -> Path:
    """bench/.peer-venv with Django, django-post-office and psycopg; its python."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    wanted = "\n".join(PEER_PACKAGES)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print("making bench/.peer-venv (django-post-office) …", file=sys.stderr, flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    install = [str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES]
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"could not install the peer: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    stamp.write_text(wanted)
    return python


def _peer(python: Path, database: str, port: int, *arguments: str) -> dict[str, Any]:
    command = [str(python), str(PEER_SCRIPT), "--database", database, "--port", str(port)]
    log = support.WORK / "peer-post-office.log"
    with log.open("ab") as errors:
        done = subprocess.run([*command, *arguments], stdout=subprocess.PIPE, stderr=errors)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"django-post-office {arguments[0]} failed:\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def post_office(
    *, port: int, messages: int, processes: tuple[int, ...], counter: Callable[[], int]
) -> list[dict[str, Any]]:
    python = ensure_peer_venv()
    url = support.new_postgres()
    database = url.rsplit("/", 1)[-1]
    results = []
    try:
        _peer(python, database, port, "migrate")
        for count in processes:
            queued = _peer(python, database, port, "queue", "--messages", str(messages))
            before = counter()
            sent = _peer(python, database, port, "send", "--processes", str(count))
            time.sleep(0.1)
            received = counter() - before
            if sent["sent"] != messages or received != messages:
                raise SystemExit(
                    f"django-post-office: {sent}, the sink counted {received} of {messages}"
                )
            results.append(
                {
                    "scenario": "django-post-office",
                    "setup": f"{count} process{'es' if count > 1 else ''}",
                    "processes_count": count,
                    "messages": messages,
                    "seconds": sent["seconds"],
                    "messages_per_second": sent["messages_per_second"],
                    "queue_seconds": queued["seconds"],
                    "message_bytes": queued["message_bytes"],
                }
            )
    finally:
        support.drop_postgres(url)
    return results
