from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.support.factories import make_org
from tidings.contacts.importer import MAX_REPORTED_ERRORS, import_csv
from tidings.contacts.models import Contact
from tidings.db.engine import Database
from tidings.errors import InvalidInput


class CountingLines:
    """CSV lines handed out one at a time, counting how many were taken."""

    def __init__(self, rows: int, bad_every: int = 0) -> None:
        self.taken = 0
        self.rows = rows
        self.bad_every = bad_every

    def __iter__(self) -> Iterator[bytes]:
        self.taken += 1
        yield b"email,First_Name,plan,sms_status\n"
        for i in range(self.rows):
            self.taken += 1
            email = "broken" if self.bad_every and i % self.bad_every == 0 else f"u{i}@example.com"
            yield f"{email},User {i},{'pro' if i % 2 else ''},subscribed\n".encode()


async def _count(db: Database, org_id: int) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(Contact).where(Contact.org_id == org_id)
        return int(await session.scalar(query) or 0)


async def test_import_streams_a_batch_at_a_time(db: Database) -> None:
    org = await make_org(db)
    lines = CountingLines(rows=1_050)
    taken_at_each_batch: list[int] = []

    async with db.session() as session:
        report = await import_csv(
            session,
            org_id=org.id,
            source=lines,
            batch_size=100,
            on_batch=lambda n: taken_at_each_batch.append(lines.taken),
        )

    # Header + one batch (+ the reader's one look-ahead at most) before the first write:
    # the file is never read ahead of what has been stored.
    assert taken_at_each_batch[0] <= 1 + 100 + 1
    assert len(taken_at_each_batch) == 11
    assert (report.rows, report.created, report.failed) == (1_050, 1_050, 0)
    assert await _count(db, org.id) == 1_050


async def test_bad_rows_are_reported_by_data_row_index(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        report = await import_csv(
            session, org_id=org.id, source=CountingLines(rows=250, bad_every=100), batch_size=60
        )
    assert [(e.index, e.field) for e in report.errors] == [
        (0, "email"),
        (100, "email"),
        (200, "email"),
    ]
    assert (report.created, report.failed) == (247, 3)


async def test_reported_errors_are_capped(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        report = await import_csv(
            session, org_id=org.id, source=CountingLines(rows=1_200, bad_every=1), batch_size=500
        )
    assert report.failed == 1_200
    assert len(report.errors) == MAX_REPORTED_ERRORS
    assert report.errors_truncated


async def test_csv_columns_map_to_fields_and_attributes(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        await import_csv(
            session,
            org_id=org.id,
            source=[
                b"email,first_name,attributes.tier,Seats,sms_status\n",
                b"a@example.com,Ann,gold,12,unsubscribed\n",
                b'b@example.com,"Smith, Bo",,007,\n',
            ],
        )
    async with db.session() as session:
        stored = {c.email: c for c in await session.scalars(select(Contact))}
    assert stored["a@example.com"].attributes == {"tier": "gold", "Seats": 12}
    assert stored["a@example.com"].sms_status == "unsubscribed"
    assert stored["b@example.com"].first_name == "Smith, Bo"
    assert stored["b@example.com"].attributes == {"Seats": "007"}


async def test_an_unusable_header_stops_before_anything_is_stored(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        with pytest.raises(InvalidInput) as caught:
            await import_csv(
                session, org_id=org.id, source=[b"email,Company Name\n", b"a@example.com,Acme\n"]
            )
    assert caught.value.errors[0].field == "header[1]"
    assert await _count(db, org.id) == 0


async def test_a_line_that_is_not_utf8_fails_only_its_row(db: Database) -> None:
    org = await make_org(db)
    rows = [f"u{i}@example.com,U{i}\n".encode() for i in range(250)]
    rows[120] = b"bad@example.com,Ren\xe9\n"  # Latin-1 inside a UTF-8 file
    async with db.session() as session:
        report = await import_csv(
            session, org_id=org.id, source=[b"email,first_name\n", *rows], batch_size=100
        )
    assert (report.rows, report.created, report.failed) == (250, 249, 1)
    assert [(e.index, e.field) for e in report.errors] == [(120, "row")]
    assert "line 122" in report.errors[0].reason
    assert await _count(db, org.id) == 249
