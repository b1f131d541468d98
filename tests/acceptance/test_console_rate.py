"""The broadcasts list's rate: the messages that reached an outcome in the last minute,
not the average since the start; the ETA from it; "—" when nothing moved; read for the
whole page in one query."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from tests.support.console import signed_in
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.outbox.models import Message


async def _sending(db: Database, org_id: int, broadcast_id: int, *, recent: int,
                   earlier: int, total: int = 40) -> None:  # fmt: skip
    """The broadcast SENDING for ten minutes, its messages: `recent` finished 10 s ago (one
    failed, one since delivered), `earlier` five minutes ago, the rest queued."""
    now = utcnow()
    async with db.transaction() as session:
        for n in range(total):
            status = "failed" if n == 1 else "delivered" if n == 2 else "sent"
            finished = now - (timedelta(seconds=10) if n < recent else timedelta(minutes=5))
            if n >= recent + earlier:
                status, finished = "queued", None
            session.add(Message(org_id=org_id, broadcast_id=broadcast_id, channel="email",
                                recipient=f"p{n}@example.com", status=status,
                                finished_at=finished))  # fmt: skip
        await session.execute(
            update(Broadcast).where(Broadcast.id == broadcast_id).values(
                status="SENDING", started_at=now - timedelta(minutes=10),
                recipients_count=total, sent_count=recent + earlier - 1, failed_count=1)
        )  # fmt: skip


def _row(html: str, broadcast_id: int) -> list[str]:
    row = re.search(rf'<tr data-broadcast="{broadcast_id}".*?</tr>', html, re.S)
    assert row is not None, html
    return re.findall(r'<td class="num">([^<]*)</td>', row.group(0))


async def test_the_rate_is_of_the_last_minute_and_one_query_reads_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    campaign_id = await email_campaign(db, me.org)
    people = await audience(db, me.org, [{"email": "a@example.com"}])
    moving = await broadcast_now(db, me.org, campaign_id, people.list_id)
    stalled = await broadcast_now(db, me.org, campaign_id, people.list_id)
    await _sending(
        db, me.org.id, moving, recent=12, earlier=18
    )  # 30 of 40 done; 12 in the last minute
    await _sending(db, me.org.id, stalled, recent=0, earlier=20)

    statements: list[str] = []  # the app's, on any engine (the app has its own)

    def counted(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
        if "FROM messages" in sql:
            statements.append(sql)

    event.listen(Engine, "before_cursor_execute", counted)
    try:
        rows = await client.get("/broadcasts/rows")
    finally:
        event.remove(Engine, "before_cursor_execute", counted)
    assert rows.status_code == 200
    assert len(statements) == 1  # one query for the page, not one per broadcast
    done, rate, eta = _row(rows.text, moving)
    assert done == "30 / 40"
    assert rate == "12"  # not the average since the start (30 in 10 minutes: 3)
    assert eta == "0m 50s"  # 10 left at 12 a minute
    assert _row(rows.text, stalled)[1:] == ["—", "–"]  # nothing moved: no rate, no ETA
    report = await client.get(f"/broadcasts/{moving}/progress")
    assert "12 per minute" in report.text
    assert "about 0m 50s left" in report.text
