"""Retention purge: a million expired messages (and their events) purged while sending runs.

    python bench/purge.py [--scale 1000000] [--send 20000] [--batch 1000]
                          [--postgres] [--json]

On a fresh database (SQLite under bench/.work, or a throwaway PostgreSQL database on
127.0.0.1:5432 with --postgres), one set-based INSERT … SELECT writes --scale finished
messages 500 days old, each with its `sent` event and its variables, so setting up a
million takes seconds. Then, in one process (as `tidings serve` runs its loops):

    baseline   --send messages to the built-in sink drained by a Dispatcher alone
    purge      another --send messages drained while `privacy.retention.Purger` purges
               every expired message and event (the org's default 400-day retention),
               --batch rows per transaction

Prints the purge's time and rows/s, the sending rate alone and during the purge (the
purge must not stop sending: on SQLite both take turns at the one writer, a batch each),
the longest purge transaction, and checks that every expired row is gone and every
message sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.support, tests.support

from bench import support
from tests.support.factories import OrgWithKey
from tests.support.sending import broadcast_now, email_campaign

from tidings.content.render import Renderer
from tidings.db import migrate
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.events.models import Event
from tidings.keys.service import create_org
from tidings.lists.service import create_list
from tidings.outbox.models import Message
from tidings.privacy import retention

_SERIES = {
    "sqlite": "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n)",
    "postgresql": "WITH seq(i) AS (SELECT generate_series(1, :n))",
}
_VARIABLES = {
    "sqlite": "json_object('code', i, 'name', 'Person ' || i)",
    "postgresql": "jsonb_build_object('code', i, 'name', 'Person ' || i)",
}
_OLD_MESSAGES = """
{series}
INSERT INTO messages (org_id, channel, recipient, variables, status, is_test, attempts,
                      due_at, cost, created_at, sent_at, finished_at)
SELECT :org_id, 'email', 'old' || i || '@example.com', {variables}, 'sent', false, 1,
       :then, 0, :then, :then, :then
FROM seq
"""
_OLD_EVENTS = """
INSERT INTO events (org_id, message_id, type, source, external_id, is_bot, occurred_at,
                    created_at)
SELECT org_id, id, 'sent', 'dispatcher', 'sent:' || id, false, created_at, created_at
FROM messages WHERE org_id = :org_id
"""
_CONTACTS = """
{series}
INSERT INTO contacts (org_id, email, attributes, email_status, sms_status, created_at,
                      updated_at)
SELECT :org_id, 'live' || i || '-' || :round || '@example.com', '{{}}', 'subscribed',
       'subscribed', :now, :now
FROM seq
"""
_MEMBERS = """
INSERT INTO list_members (list_id, contact_id, org_id, created_at)
SELECT :list_id, id, org_id, :now FROM contacts WHERE org_id = :org_id AND email LIKE :like
"""


async def _fill(db: Database, *, scale: int) -> OrgWithKey:
    dialect = db.engine.dialect.name
    async with db.transaction() as session:
        created = await create_org(session, name="purge")
    org = OrgWithKey(created.org.id, created.org.login, created.key.secret)
    then = (utcnow().replace(tzinfo=None)).replace(year=utcnow().year - 2)  # 2 years ago
    async with db.session() as session:
        statement = _OLD_MESSAGES.format(series=_SERIES[dialect], variables=_VARIABLES[dialect])
        await session.execute(text(statement), {"n": scale, "org_id": org.id, "then": then})
        await session.execute(text(_OLD_EVENTS), {"org_id": org.id})
        await session.commit()
        if dialect == "postgresql":
            await session.execute(text("ANALYZE"))
    return org


async def _live_broadcast(db: Database, org: OrgWithKey, *, count: int, round_: int) -> None:
    """`count` new contacts on a list of their own and a broadcast to them, due now."""
    dialect = db.engine.dialect.name
    now = utcnow().replace(tzinfo=None)
    async with db.transaction() as session:
        made = await create_list(session, org_id=org.id, name=f"live {round_}", description=None)
    async with db.session() as session:
        await session.execute(
            text(_CONTACTS.format(series=_SERIES[dialect])),
            {"n": count, "org_id": org.id, "round": str(round_), "now": now},
        )
        await session.execute(
            text(_MEMBERS),
            {"list_id": made.list.id, "org_id": org.id, "now": now, "like": f"%-{round_}@%"},
        )
        await session.commit()
    campaign_id = await email_campaign(db, org, name=f"live {round_}")
    await broadcast_now(db, org, campaign_id, made.list.id)


async def _bench(url: str, *, scale: int, send: int, batch: int) -> dict[str, Any]:
    db = Database(support.settings(url))
    try:
        started = time.perf_counter()
        org = await _fill(db, scale=scale)
        setup = time.perf_counter() - started

        await _live_broadcast(db, org, count=send, round_=1)
        started = time.perf_counter()
        await Dispatcher(db, renderer=Renderer()).drain()
        alone = time.perf_counter() - started

        await _live_broadcast(db, org, count=send, round_=2)

        async def sending() -> float:
            began = time.perf_counter()
            await Dispatcher(db, renderer=Renderer()).drain()
            return time.perf_counter() - began

        sender = asyncio.create_task(sending())
        started = time.perf_counter()
        purged = await retention.Purger(db, batch=batch).purge(now=utcnow())
        purge_seconds = time.perf_counter() - started
        during = await sender

        async with db.session() as session:
            left = await session.scalar(
                select(func.count()).select_from(Message).where(Message.recipient.like("old%"))
            )
            events = await session.scalar(select(func.count()).select_from(Event))
            statuses = dict(
                (await session.execute(
                    select(Message.status, func.count()).group_by(Message.status)
                )).all()
            )  # fmt: skip
    finally:
        await db.dispose()
    if left or purged.messages != scale or statuses != {"sent": 2 * send}:
        raise SystemExit(f"purge: {left} old left, {purged}, statuses {statuses}")
    return {
        "setup_seconds": round(setup, 1),
        "purge_seconds": round(purge_seconds, 2),
        "purged_rows_per_second": round((purged.messages + scale) / purge_seconds),
        "longest_purge_transaction_ms": round(purged.longest_batch * 1000, 1),
        "send_alone_per_second": round(send / alone),
        "send_during_purge_per_second": round(send / during),
        "events_left": events,
    }


def run(*, scale: int = 1_000_000, send: int = 20_000, batch: int = 1_000,
        postgres: bool = False) -> dict[str, Any]:  # fmt: skip
    load_before = os.getloadavg()[0]
    url = support.fresh_database("purge.db", postgres=postgres)
    try:
        migrate.upgrade(url)
        result = asyncio.run(_bench(url, scale=scale, send=send, batch=batch))
    finally:
        support.discard_database(url)
    return {
        "scenario": "retention purge while sending",
        "engine": "postgresql" if postgres else "sqlite",
        "messages": scale,
        "sent": send,
        "batch": batch,
        **result,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = support.standalone_parser(__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000, help="expired messages")
    parser.add_argument("--send", type=int, default=20_000, help="messages sent per round")
    parser.add_argument("--batch", type=int, default=1_000, help="purge rows per transaction")
    args = parser.parse_args()
    if min(args.scale, args.send, args.batch) < 1:
        parser.error("--scale, --send and --batch must be positive")
    result = run(scale=args.scale, send=args.send, batch=args.batch, postgres=args.postgres)
    if args.json:
        print(json.dumps(result), flush=True)
        return
    print(
        f"purge of {args.scale:,} messages + {args.scale:,} events on {result['engine']}:"
        f" {result['purge_seconds']} s ({result['purged_rows_per_second']:,} rows/s,"
        f" longest transaction {result['longest_purge_transaction_ms']} ms);"
        f" sending {result['send_alone_per_second']:,}/s alone,"
        f" {result['send_during_purge_per_second']:,}/s during the purge"
        f" (set-up {result['setup_seconds']} s, load {result['load_average']})"
    )


if __name__ == "__main__":
    main()
