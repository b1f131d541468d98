"""API intake on its own: seed 000 invite requests against one `tidings serve`.

    python bench/intake_walr.py [--seconds 60] [--concurrency 8] [--size 500]
                                [--postgres] [--json] [--keep-server SECONDS]

It creates a fresh database (SQLite under bench/.work, or a throwaway PostgreSQL database
on 127.0.0.1:5432 with --postgres), an org with its key, an email template using
`{{ invite_link }}` and a campaign with `external_id`, `project_ref` and `survey_ref`
(seed 000's campaignId, projectId, surveyId) — then starts `tidings serve
--no-dispatcher` on a free port (uvicorn, one process; the dispatcher is off so the
figure is what the API accepts, not what is sent) and drives --concurrency clients
(httpx, in this process, sharing the machine with the server), each posting
`POST /compat/walr/projects/p-1/surveys/s-1/invites` with --size recipients never seen
before (every one a contact created, a list membership and a held message) as soon as
its previous request is answered, for --seconds.

Latency is from just before a request is sent to its full answer; recipients/s is the
sum of the answers' `accepted` over the time from the first request to the last answer.
Every answer must be 202 with every recipient accepted. The server's peak RSS (VmHWM)
and CPU time are read from /proc before it stops; the server's pid is printed at start
(to stderr) so that `py-spy record --pid` can attach.

`run(...)` returns the result dict; `--json` prints it as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE.parent))  # for tests.support.pgdb (throwaway PostgreSQL databases)

from tests.support import pgdb  # noqa: E402

from tidings.campaigns import service as campaigns  # noqa: E402
from tidings.campaigns.schemas import CampaignCreate  # noqa: E402
from tidings.content.render import Renderer  # noqa: E402
from tidings.db import migrate  # noqa: E402
from tidings.db.engine import Database  # noqa: E402
from tidings.orgs.service import create_org  # noqa: E402
from tidings.settings import Settings  # noqa: E402
from tidings.templates import service as templates  # noqa: E402

PATH = "/compat/walr/projects/p-1/surveys/s-1/invites"
CAMPAIGN = "nps-bench"
STORES = ("Leeds", "York", "Gent", "Porto", "Lyon")
SECRET_KEY = "bench-intake-secret-key-not-for-production-0123456789"  # noqa: S105


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_sqlite(name: str) -> str:
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def process_stats(pid: int) -> dict[str, float]:
    """Peak RSS (MB, VmHWM) and CPU seconds of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"peak_rss_mb": round(hwm / 1024, 1), "cpu_seconds": round(cpu, 2)}


async def prepare(url: str) -> str:
    """Org, template and campaign; returns the org's API key."""
    db = Database(Settings(database_url=url, auto_migrate=False))
    try:
        async with db.session() as session:
            created = await create_org(session, name="intake")
        org_id, key = created.org.id, created.key.secret
        async with db.session() as session:
            template = await templates.create_template(
                session,
                org_id=org_id,
                renderer=Renderer(),
                name="nps",
                channel="email",
                subject="{{ first_name }}, a minute for us?",
                html=None,
                text="Hi {{ first_name }}, tell us about {{ store }}: {{ invite_link }}",
            )
        async with db.session() as session:
            await campaigns.create_campaign(
                session,
                org_id=org_id,
                body=CampaignCreate(
                    name="NPS",
                    channel="email",
                    template_id=template.id,
                    from_email="research@acme.example",
                    external_id=CAMPAIGN,
                    project_ref="p-1",
                    survey_ref="s-1",
                    invite_url="https://survey.example/s-1?store={{ store | urlencode }}",
                ),
            )
    finally:
        await db.dispose()
    return key


def body(batch: int, size: int) -> bytes:
    recipients = [
        {
            "variables": {
                "email": f"invitee{batch}-{i}@example.org",
                "first_name": f"Guest{i}",
                "store": STORES[i % len(STORES)],
                "plan": "pro",
            }
        }
        for i in range(size)
    ]
    return json.dumps(
        {"campaignId": CAMPAIGN, "recipients": recipients, "sendTimeUtc": None}
    ).encode()


async def load(
    api_url: str, key: str, *, seconds: float, concurrency: int, size: int
) -> dict[str, Any]:
    batches = itertools.count()
    latencies: list[float] = []
    accepted = 0
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    bodies = [body(next(batches), size) for _ in range(concurrency)]
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one_client(content: bytes) -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                response = await client.post(PATH, content=content, headers=headers)
                latencies.append(time.perf_counter() - sent)
                if response.status_code == 202 and response.json()["accepted"] == size:
                    accepted += size
                else:
                    problem = f"{response.status_code}: {response.text[:160]}"
                    errors[problem] = errors.get(problem, 0) + 1
                content = body(next(batches), size)  # built while nothing is timed

        await asyncio.gather(*(one_client(b) for b in bodies))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []
    return {
        "seconds": round(elapsed, 2),
        "requests": len(ordered),
        "recipients_accepted": accepted,
        "recipients_per_second": round(accepted / elapsed),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round((q[98] if q else ordered[-1]) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "errors": errors,
    }


def _serve(url: str, port: int, log: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": url,
        "TIDINGS_SECRET_KEY": SECRET_KEY,
        "TIDINGS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TIDINGS_AUTO_MIGRATE": "false",
        "TIDINGS_LOG_LEVEL": "warning",
        "TIDINGS_BOUNCE_POLL_SECONDS": "0",
    }
    command = [sys.executable, "-m", "tidings", "serve", "--port", str(port), "--no-dispatcher"]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tidings serve exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("tidings serve never answered /readyz")


def _processes(server: subprocess.Popen[bytes]) -> list[int]:
    """The server's pid and its children's (uvicorn's workers)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    found = [server.pid]
    if children.exists():
        found += [int(p) for p in children.read_text().split()]
    return found


def run(
    *,
    seconds: float = 60.0,
    concurrency: int = 8,
    size: int = 500,
    postgres: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Drive one fresh `tidings serve`; the result dict (SystemExit when requests fail)."""
    WORK.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    url = asyncio.run(pgdb.create()) if postgres else fresh_sqlite("intake-walr.db")
    try:
        migrate.upgrade(url)
        key = asyncio.run(prepare(url))
        port = free_port()
        server = _serve(url, port, WORK / "intake-walr-serve.log", workers)
        try:
            print(f"tidings serve: pid {server.pid} on port {port}", file=sys.stderr, flush=True)
            result = asyncio.run(
                load(
                    f"http://127.0.0.1:{port}",
                    key,
                    seconds=seconds,
                    concurrency=concurrency,
                    size=size,
                )
            )
            processes = {pid: process_stats(pid) for pid in _processes(server)}
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        if postgres:
            asyncio.run(pgdb.drop(url))
    if result["errors"]:
        raise SystemExit(f"intake: failed requests {result['errors']}")
    return {
        "scenario": "API intake (seed 000)",
        "engine": "postgresql" if postgres else "sqlite",
        "workers": workers,
        "concurrency": concurrency,
        "recipients_per_request": size,
        **result,
        "server_peak_rss_mb": max(p["peak_rss_mb"] for p in processes.values()),
        "server_cpu_seconds": round(sum(p["cpu_seconds"] for p in processes.values()), 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size", type=int, default=500, help="recipients per request")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a throwaway PostgreSQL database on 127.0.0.1:5432 (default: SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    result = run(
        seconds=args.seconds,
        concurrency=args.concurrency,
        size=args.size,
        postgres=args.postgres,
        workers=args.workers,
    )
    if args.json:
        print(json.dumps(result), flush=True)
        return
    print(
        f"intake on {result['engine']} ({result['workers']} worker(s), concurrency"
        f" {args.concurrency}, {args.size} recipients/request, {result['seconds']} s):"
        f" {result['recipients_per_second']:,} recipients/s, p50 {result['p50_ms']} ms,"
        f" p99 {result['p99_ms']} ms, {result['requests']} requests; server CPU"
        f" {result['server_cpu_seconds']} s, peak RSS {result['server_peak_rss_mb']} MB"
        f" (load {result['load_average']})"
    )


if __name__ == "__main__":
    main()
