"""Refused delivery reports are kept for TIDINGS_REJECTED_REPORT_RETENTION_DAYS, then the
worker's reports housekeeping deletes them, a batch per transaction."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, insert, select

from tests.support.factories import make_org
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.run import build_reports_keeper
from tidings.reports.models import RejectedReport
from tidings.reports.pending import PRUNE_BATCH, prune_rejected
from tidings.settings import Settings


async def _store(db: Database, org_id: int, *, n: int, age: timedelta, reason: str) -> None:
    at = utcnow() - age
    rows = [{"org_id": org_id, "source": "infobip", "reason": reason, "created_at": at}] * n
    async with db.session() as session:
        await session.execute(insert(RejectedReport), rows)
        await session.commit()


async def _kept(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(RejectedReport.reason, func.count()).group_by(RejectedReport.reason)
        )
        return {reason: n for reason, n in rows}  # noqa: C416 — rows, not pairs


async def test_refused_reports_older_than_the_retention_are_pruned_in_batches(
    db: Database,
) -> None:
    org = await make_org(db)
    old = 2 * PRUNE_BATCH + 7  # three batches
    await _store(db, org.id, n=old, age=timedelta(days=8), reason="bad_signature")
    await _store(db, org.id, n=3, age=timedelta(days=6, hours=23), reason="stale")

    pruned = await prune_rejected(db, before=utcnow() - timedelta(days=7))

    assert pruned == old
    assert await _kept(db) == {"stale": 3}
    assert await prune_rejected(db, before=utcnow() - timedelta(days=7)) == 0


async def test_the_worker_prunes_with_the_configured_retention(
    db: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    assert Settings.model_fields["rejected_report_retention_days"].default == 7  # documented
    org = await make_org(db)
    await _store(db, org.id, n=4, age=timedelta(days=3), reason="bad_signature")
    await _store(db, org.id, n=2, age=timedelta(hours=1), reason="unsigned")
    configured = settings.model_copy(update={"rejected_report_retention_days": 2})
    keeper = build_reports_keeper(configured, db)
    assert keeper.retention == timedelta(days=2)

    await keeper.tick()

    assert await _kept(db) == {"unsigned": 2}
    counted = await client.get(f"/v1/orgs/{org.id}/reports/rejected", headers=org.bearer)
    assert counted.json()["total"] == 2  # what the API counts is what is kept
