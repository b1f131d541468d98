"""Fan-out on its own, every skip rule in play: the time to expand one broadcast.

    python bench/fanout_rules.py [--contacts 1000000] [--audience segment|list|all]
                                 [--channel email|sms] [--purpose marketing|transactional]
                                 [--local-time] [--estimate] [--postgres] [--json]

`make bench`'s fan-out scenario (bench/fanout.py) expands the shared seed, where every
contact is queued. This script needs no seed and makes the expansion decide: it creates a
fresh database (SQLite under bench/.work, or a throwaway PostgreSQL database on
127.0.0.1:5432 with --postgres), an org, and --contacts contacts written by one
set-based INSERT … SELECT in the database (a recursive CTE on SQLite, generate_series on
PostgreSQL), so setting up a million takes seconds and no Python memory. 1 in 100 has no
email, 1 in 50 is unsubscribed from email, 1 in 200 is on the suppression list (hard
bounce); every one has a phone in FR or US, 1 in 40 unsubscribed from SMS. All are on one
list, and a segment (`attributes.plan in [...]`) matches all of them.

`--local-time`: the broadcast asks for 09:30 in each recipient's zone, and 3 contacts in 5
have a zone of their own (London, New York, Sydney); the others are placed by their
phone's country (France) or the org's zone (+1 numbers): the expansion first reads the
distinct zones, then gives each row its zone's instant. `--estimate`: the estimate
(`broadcasts.service.estimate_broadcast`, one grouped SELECT) is timed too, before the
expansion, and checked against it.

Only `broadcasts.service.start_due` is timed — the dispatcher's call that expands a due
broadcast, reserves its cost and sets it SENDING, in one transaction. The result is
checked against the generator's rules (contacts, queued and skipped counts). Prints
seconds, rows/s, this process's CPU time over the expansion, the PostgreSQL backend's
CPU time (read from /proc: the server runs on this machine) and this process's peak RSS.

`run(...)` returns the result dict; `--json` prints it as one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.support, tests.support

from bench import support

from tidings.broadcasts import preview
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import CampaignCreate
from tidings.content.render import Renderer
from tidings.db import migrate
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.keys.service import create_org
from tidings.lists.service import create_list
from tidings.outbox.create import count_by_status
from tidings.segments import service as segments
from tidings.templates import service as templates

PLANS = ("free", "starter", "pro", "enterprise")

# One statement per database; contacts numbered 1..:n, the rules (i % …) those that
# `expected()` counts.
_SERIES = {
    "sqlite": "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)",
    "postgresql": "WITH seq(i) AS (SELECT generate_series(1, :n))",
}
_JSON = {
    "sqlite": "json_object('plan', {plan}, 'seats', i % 50)",
    "postgresql": "jsonb_build_object('plan', {plan}, 'seats', i % 50)",
}
_PLAN = "CASE i % 4 " + " ".join(f"WHEN {k} THEN '{p}'" for k, p in enumerate(PLANS)) + " END"
_CONTACTS = """
{series}
INSERT INTO contacts (org_id, email, phone, phone_country, first_name, last_name, attributes,
                      email_status, sms_status, timezone, created_at, updated_at)
SELECT :org_id,
       CASE WHEN i % 100 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       CASE WHEN i % 2 = 0 THEN '+336' || (10000000 + i) ELSE '+1415' || (1000000 + i) END,
       CASE WHEN i % 2 = 0 THEN 'FR' ELSE 'US' END,
       'First' || i, 'Last' || i, {attributes},
       CASE WHEN i % 50 = 1 THEN 'unsubscribed' ELSE 'subscribed' END,
       CASE WHEN i % 40 = 3 THEN 'unsubscribed' ELSE 'subscribed' END,
       {timezone},
       :now, :now
FROM seq
"""
_SUPPRESSIONS = """
INSERT INTO suppressions (org_id, channel, address, reason, source, created_at)
SELECT org_id, 'email', email, 'hard_bounce', 'bench', :now FROM contacts
WHERE org_id = :org_id AND email IS NOT NULL AND id % 200 = 2
"""
_MEMBERS = """
INSERT INTO list_members (list_id, contact_id, org_id, created_at)
SELECT :list_id, id, org_id, :now FROM contacts WHERE org_id = :org_id
"""


def expected(n: int, *, channel: str, purpose: str) -> dict[str, int]:
    """Skipped and queued counts the generator's rules give (ids are 1..n in a fresh db)."""
    skipped = 0
    for i in range(1, n + 1):
        if channel == "email":
            no_address, suppressed, unsubscribed = i % 100 == 0, i % 200 == 2, i % 50 == 1
        else:
            no_address, suppressed, unsubscribed = False, False, i % 40 == 3
        skipped += no_address or suppressed or (purpose == "marketing" and unsubscribed)
    return {"skipped": skipped, "queued": n - skipped}


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process on this machine, None when unknown."""
    if pid is None:
        return None
    try:
        return support.process_cpu_seconds(pid)
    except OSError:
        return None


_ZONES = ("CASE i % 5 WHEN 0 THEN 'Europe/London' WHEN 1 THEN 'America/New_York'"
          " WHEN 2 THEN 'Australia/Sydney' END")  # fmt: skip


async def prepare(
    db: Database,
    *,
    contacts: int,
    audience: str,
    channel: str,
    purpose: str,
    local_time: bool = False,
) -> tuple[int, int]:
    """Org, contacts, suppressions, list, segment, campaign and a due broadcast;
    returns (org id, broadcast id)."""
    dialect = db.engine.dialect.name
    async with db.transaction() as session:
        org_id = (await create_org(session, name="fanout")).org.id
    now = utcnow().replace(tzinfo=None)
    statement = _CONTACTS.format(
        series=_SERIES[dialect],
        attributes=_JSON[dialect],
        timezone=_ZONES if local_time else "NULL",
        plan="{plan}",
    )
    async with db.session() as session:
        await session.execute(
            text(statement.format(plan=_PLAN)), {"n": contacts, "org_id": org_id, "now": now}
        )
        await session.execute(text(_SUPPRESSIONS), {"org_id": org_id, "now": now})
        await session.commit()
    async with db.transaction() as session:
        created_list = await create_list(session, org_id=org_id, name="everyone", description=None)
    list_id = created_list.list.id
    async with db.session() as session:
        await session.execute(text(_MEMBERS), {"list_id": list_id, "org_id": org_id, "now": now})
        await session.commit()
        if dialect == "postgresql":  # as autovacuum would, before any real broadcast
            await session.execute(text("ANALYZE"))
            await session.commit()
    async with db.transaction() as session:
        segment = await segments.create_segment(
            session,
            org_id=org_id,
            name="all plans",
            description=None,
            filter={"field": "attributes.plan", "op": "in", "value": list(PLANS)},
        )
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name="fanout",
            channel=channel,
            subject="Hello {{ first_name }}" if channel == "email" else None,
            html=None,
            text="Hi {{ first_name }}",
        )
    async with db.transaction() as session:
        campaign = await campaigns.create_campaign(
            session,
            org_id=org_id,
            body=CampaignCreate.model_validate(
                {
                    "name": "fanout",
                    "channel": channel,
                    "purpose": purpose,
                    "template_id": template.id,
                    "from_email": "news@acme.example" if channel == "email" else None,
                }
            ),
        )
    audiences: dict[str, dict[str, Any]] = {
        "all": {"send_to_all": True},
        "list": {"list_ids": [list_id]},
        "segment": {"segment_ids": [segment.segment.id]},
    }
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(
            session,
            org_id=org_id,
            body=BroadcastCreate(
                name="fanout",
                campaign_id=campaign.id,
                local_time="09:30" if local_time else None,
                **audiences[audience],
            ),
        )
    return org_id, created.broadcast.id


async def _bench(
    url: str,
    *,
    contacts: int,
    audience: str,
    channel: str,
    purpose: str,
    local_time: bool = False,
    estimate: bool = False,
) -> dict[str, Any]:
    db = Database(support.settings(url))
    estimated: Any = None
    estimate_seconds = None
    try:
        set_up = time.perf_counter()
        org_id, broadcast_id = await prepare(
            db,
            contacts=contacts,
            audience=audience,
            channel=channel,
            purpose=purpose,
            local_time=local_time,
        )
        set_up = time.perf_counter() - set_up
        if estimate:
            async with db.session() as session:
                started = time.perf_counter()
                estimated = await preview.estimate_broadcast(
                    session, org_id=org_id, broadcast_id=broadcast_id
                )
                estimate_seconds = round(time.perf_counter() - started, 2)
        rss_before = support.peak_rss_mb()
        async with db.transaction() as session:
            backend = None
            if db.engine.dialect.name == "postgresql":
                backend = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
                await session.rollback()
            server_cpu = process_cpu(backend)
            cpu = support.cpu_seconds()
            started = time.perf_counter()
            if not await broadcasts.start_due(session, broadcast_id=broadcast_id, now=utcnow()):
                raise SystemExit("start_due did not start the broadcast")
            seconds = time.perf_counter() - started
            cpu = support.cpu_seconds() - cpu
            server_cpu_after = process_cpu(backend)
        async with db.session() as session:
            broadcast = await broadcasts.get_broadcast(
                session, org_id=org_id, broadcast_id=broadcast_id
            )
            statuses = await count_by_status(session, broadcast_id=broadcast_id)
    finally:
        await db.dispose()
    want = expected(contacts, channel=channel, purpose=purpose)
    problems = []
    if broadcast.status != "SENDING":
        problems.append(f"broadcast is {broadcast.status}, not SENDING")
    if broadcast.contacts_count != contacts:
        problems.append(f"contacts_count {broadcast.contacts_count}, expected {contacts}")
    if statuses != {k: v for k, v in want.items() if v}:
        problems.append(f"messages by status {statuses}, expected {want}")
    if broadcast.skipped_count != want["skipped"]:
        problems.append(f"skipped_count {broadcast.skipped_count}, expected {want['skipped']}")
    if estimated is not None and (estimated.recipients, sum(estimated.skipped.values())) != (
        want["queued"],
        want["skipped"],
    ):
        problems.append(f"the estimate {estimated} is not the expansion {want}")
    zones = len(broadcast.due_schedule or [])
    if local_time and zones < 4:
        problems.append(f"{zones} distinct due times with local time on, expected 4 or more")
    if problems:
        raise SystemExit("fan-out result is wrong: " + "; ".join(problems))
    server = None
    if server_cpu is not None and server_cpu_after is not None:
        server = round(server_cpu_after - server_cpu, 2)
    return {
        "setup_seconds": round(set_up, 1),
        "seconds": round(seconds, 2),
        "rows_per_second": round(contacts / seconds),
        "cpu_seconds": round(cpu, 2),
        "server_cpu_seconds": server,
        "estimate_seconds": estimate_seconds,
        "due_times": zones,
        "queued": statuses.get("queued", 0),
        "skipped": statuses.get("skipped", 0),
        "peak_rss_mb_before": rss_before,
        "peak_rss_mb": support.peak_rss_mb(),
    }


def run(
    *,
    contacts: int = 1_000_000,
    postgres: bool = False,
    audience: str = "segment",
    channel: str = "email",
    purpose: str = "marketing",
    local_time: bool = False,
    estimate: bool = False,
) -> dict[str, Any]:
    """Expand one broadcast of `contacts` contacts on a fresh database; the result dict."""
    load_before = os.getloadavg()[0]  # other work on the machine skews the figures
    url = support.fresh_database("fanout-rules.db", postgres=postgres)
    try:
        migrate.upgrade(url)
        result = asyncio.run(
            _bench(
                url,
                contacts=contacts,
                audience=audience,
                channel=channel,
                purpose=purpose,
                local_time=local_time,
                estimate=estimate,
            )
        )
    finally:
        support.discard_database(url)
    return {
        "scenario": "fan-out (skip rules)",
        "engine": "postgresql" if postgres else "sqlite",
        "contacts": contacts,
        "audience": audience,
        "channel": channel,
        "purpose": purpose,
        "local_time": local_time,
        **result,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = support.standalone_parser(__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--audience", choices=("segment", "list", "all"), default="segment")
    parser.add_argument("--channel", choices=("email", "sms"), default="email")
    parser.add_argument("--purpose", choices=("marketing", "transactional"), default="marketing")
    parser.add_argument("--local-time", action="store_true", help="09:30 in each zone")
    parser.add_argument("--estimate", action="store_true", help="time the estimate too")
    args = parser.parse_args()
    if args.contacts < 1:
        parser.error("--contacts must be positive")
    result = run(
        contacts=args.contacts,
        postgres=args.postgres,
        audience=args.audience,
        channel=args.channel,
        purpose=args.purpose,
        local_time=args.local_time,
        estimate=args.estimate,
    )
    if args.json:
        print(json.dumps(result), flush=True)
        return
    server = result["server_cpu_seconds"]
    print(
        f"fan-out of {args.contacts:,} contacts ({args.audience}, {args.channel}"
        f" {args.purpose}) on {result['engine']}: {result['seconds']} s,"
        f" {result['rows_per_second']:,} rows/s, CPU {result['cpu_seconds']} s"
        + (f" (+ PostgreSQL backend {server} s)" if server is not None else "")
        + f", {result['queued']:,} queued + {result['skipped']:,} skipped,"
        f" peak RSS {result['peak_rss_mb']} MB (set-up {result['setup_seconds']} s,"
        f" load {result['load_average']})"
        + (f"; local time on: {result['due_times']} due times" if args.local_time else "")
        + (f"; estimate {result['estimate_seconds']} s" if args.estimate else "")
    )


if __name__ == "__main__":
    main()
