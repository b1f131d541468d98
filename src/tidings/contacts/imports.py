"""Imports that run in the background and say how far they are (the console's CSV import).

    start(session, org_id=…, started_by=…, total_rows=…)   a row, status "running"
    await run(db, import_id=…, org_id=…, source=spool, by=actor, …)
                                 the importer (`importer.import_csv`, as the API runs it),
                                 its progress written after each batch, then "done" (or
                                 "failed" with the reason) and the audit record
    get_import(session, org_id=…, import_id=…)              the row, scoped by org

The API's `POST …/contacts/import` answers its report when the file is done; the console
cannot hold a browser's request that long, so it uploads, answers at once and polls the
row. The row lives in the database: the poll may reach any of the server's workers.
An import whose process stops half-way stays "running" (its batches before are kept, as
the API's are); the page shows when it last moved.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.service import Actor
from tidings.contacts import importer
from tidings.contacts.models import ContactImport
from tidings.db.base import utcnow
from tidings.db.engine import Database, transaction
from tidings.db.owned import get_owned
from tidings.errors import FieldError, InvalidInput

log = logging.getLogger(__name__)


class ImportStatus(StrEnum):
    """RUNNING → DONE, or RUNNING → FAILED (a file the importer refuses whole, or an
    error it did not expect); nothing leaves DONE or FAILED."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _finish(row: ContactImport, status: ImportStatus) -> None:
    if row.status != ImportStatus.RUNNING:
        raise ValueError(f"import {row.id} is {row.status} already")
    row.status, row.finished_at = status, utcnow()


def count_rows(source: IO[bytes]) -> int:
    """The data rows of a CSV file (the header is not one), read once; the file is left
    at its start for the import."""
    text = io.TextIOWrapper(source, encoding="utf-8", errors="replace", newline="")
    try:
        rows = sum(1 for _ in csv.reader(text)) - 1
    except csv.Error:
        rows = 0  # the importer reports where it stops
    finally:
        text.detach()
    source.seek(0)
    return max(rows, 0)


async def start(
    session: AsyncSession, *, org_id: int, started_by: str, total_rows: int
) -> ContactImport:
    row = ContactImport(org_id=org_id, started_by=started_by, status=ImportStatus.RUNNING,
                        total_rows=total_rows, rows=0, created=0, updated=0, failed=0,
                        report={"errors": [], "truncated": False})  # fmt: skip
    session.add(row)
    await session.flush()
    return row


async def get_import(session: AsyncSession, *, org_id: int, import_id: int) -> ContactImport:
    return await get_owned(session, ContactImport, org_id=org_id, ident=import_id, what="import")


def _errors(errors: Iterable[FieldError]) -> list[dict[str, Any]]:
    return [{"field": e.field, "reason": e.reason, "index": e.index} for e in errors]


async def _record(
    session: AsyncSession, *, org_id: int, import_id: int, report: importer.ImportReport
) -> ContactImport:
    row = await get_import(session, org_id=org_id, import_id=import_id)
    row.rows, row.created, row.updated, row.failed = (
        report.rows, report.created, report.updated, report.failed)  # fmt: skip
    row.report = {"errors": _errors(report.errors), "truncated": report.errors_truncated}
    return row


async def run(
    db: Database,
    *,
    import_id: int,
    org_id: int,
    source: IO[bytes],
    by: Actor,
    list_ids: list[int] | None = None,
    batch_size: int = 1_000,
) -> None:
    """Import `source` into the org's contacts, recording progress on the import's row;
    `source` is closed at the end. Never raises: a failure is the row's status."""
    async with db.session() as session:

        async def progress(report: importer.ImportReport) -> None:
            async with transaction(session):
                await _record(session, org_id=org_id, import_id=import_id, report=report)

        try:
            report = await importer.import_csv(
                session, org_id=org_id, source=source, list_ids=list_ids,
                batch_size=batch_size, after_batch=progress,
            )  # fmt: skip
        except Exception as exc:
            if isinstance(exc, InvalidInput):
                errors = _errors(exc.errors)
            else:
                log.exception("contact import %s failed", import_id)
                errors = [{"field": "file", "reason": "the import failed; it has been logged",
                           "index": None}]  # fmt: skip
            async with transaction(session):
                row = await get_import(session, org_id=org_id, import_id=import_id)
                _finish(row, ImportStatus.FAILED)
                row.report = {"errors": errors, "truncated": False}
            return
        finally:
            source.close()
        async with transaction(session):
            row = await _record(session, org_id=org_id, import_id=import_id, report=report)
            _finish(row, ImportStatus.DONE)
            counts = {"created": report.created, "updated": report.updated,
                      "failed": report.failed}  # fmt: skip
            await audit.record(session, org_id=org_id, by=by, action=Action.CONTACT_IMPORT,
                               target_id=None, changes=counts)  # fmt: skip
