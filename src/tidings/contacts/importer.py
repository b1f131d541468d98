"""Streaming CSV import: rows are read, validated and upserted a batch at a time, so memory
stays flat whatever the file's size. The importer drives the batches as a worker loop
drives its steps: it opens each batch's write transaction itself, so an import that stops
half-way keeps the batches before, and reading the file never holds a write transaction.

Columns: `email`, `phone`, `first_name`, `last_name`, `locale`, `timezone`,
`email_status`, `sms_status` (subscribed | unsubscribed); any other column is an attribute
(`plan` or `attributes.plan`). Empty cells leave the stored value as it is.

CSV has no types, so attribute cells are typed conservatively (`typed_cell`): `true` and
`false` become booleans, integers without leading zeros (up to 18 digits) and decimals
that read back unchanged become numbers; everything else — `007`, `1.10`, `+33…`, dates —
stays text. Segment filters on numbers and booleans then work on imported data.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.normalize import ATTRIBUTE_NAME
from tidings.contacts.service import upsert_contacts
from tidings.db.engine import transaction
from tidings.errors import FieldError, InvalidInput

COLUMNS = frozenset({"email", "phone", "first_name", "last_name", "locale", "timezone"})
STATUS_COLUMNS = {"email_status": "email", "sms_status": "sms"}
MAX_REPORTED_ERRORS = 1_000
_EXTRA = "extra_columns"


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[FieldError] = field(default_factory=list)
    errors_truncated: bool = False

    def add_errors(self, errors: Iterable[FieldError]) -> None:
        for error in errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(error)
            else:
                self.errors_truncated = True


_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,17})$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")


def typed_cell(text: str) -> str | int | float | bool:
    """The JSON value a CSV attribute cell stands for (see the module docstring)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.match(text):
        return int(text)
    if _DECIMAL.match(text) and repr(float(text)) == text:
        return float(text)
    return text


def header_columns(header: Iterable[str]) -> dict[str, str]:
    """Map each header cell to its contact field; InvalidInput names unusable columns."""
    mapping: dict[str, str] = {}
    errors = []
    for position, raw in enumerate(header):
        name = raw.strip()
        lowered = name.lower()
        if lowered in COLUMNS or lowered in STATUS_COLUMNS:
            target = lowered
        else:
            attribute = name[len("attributes.") :] if lowered.startswith("attributes.") else name
            if not ATTRIBUTE_NAME.match(attribute):
                errors.append(
                    FieldError(
                        f"header[{position}]",
                        f"{name!r} is neither a contact field nor a valid attribute name",
                    )
                )
                continue
            target = f"attributes.{attribute}"
        if target in mapping.values():
            errors.append(FieldError(f"header[{position}]", f"{name!r} appears twice"))
        mapping[raw] = target
    if errors:
        raise InvalidInput(errors)
    return mapping


def row_from_record(record: dict[str | None, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """A contact row (as the JSON API takes it) from one CSV record."""
    row: dict[str, Any] = {}
    attributes: dict[str, str | int | float | bool] = {}
    subscriptions: dict[str, str] = {}
    for column, value in record.items():
        if column is None:
            row[_EXTRA] = value  # more cells than the header: reported as an unknown field
            continue
        text = (value or "").strip()
        if not text:
            continue
        target = mapping[column]
        if target.startswith("attributes."):
            attributes[target.removeprefix("attributes.")] = typed_cell(text)
        elif target in STATUS_COLUMNS:
            subscriptions[STATUS_COLUMNS[target]] = text
        else:
            row[target] = text
    if attributes:
        row["attributes"] = attributes
    if subscriptions:
        row["subscriptions"] = subscriptions
    return row


class Utf8Lines:
    """Binary lines decoded one at a time, so one undecodable line costs only its row.

    A line that is not UTF-8 is passed on with U+FFFD in place of the bad bytes and its
    1-based number is kept in `bad`; the importer fails the row that holds it.
    """

    def __init__(self, source: Iterable[bytes]) -> None:
        self.source = source
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self.source, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                self.bad.add(number)
                yield raw.decode("utf-8", errors="replace")


async def import_csv(
    session: AsyncSession,
    *,
    org_id: int,
    source: Iterable[bytes],
    list_ids: list[int] | None = None,
    batch_size: int = 1_000,
    on_batch: Callable[[int], None] | None = None,
    after_batch: Callable[[ImportReport], Awaitable[None]] | None = None,
) -> ImportReport:
    """Import CSV bytes (an iterable of lines, read lazily, e.g. a binary file) into the
    org's contacts, one write transaction per batch on `session`, which must have none
    open (see the module docstring).

    Errors name the 0-based data row index (the header is not a row). `on_batch` is called
    with the number of rows each batch held, for progress bars; `after_batch` is awaited
    with the report so far once each batch is committed (the session then has no
    transaction open: the console's imports record their progress with it).
    """
    lines = Utf8Lines(source)
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise InvalidInput.field("file", f"unreadable CSV header: {exc}") from None
    if not header:
        raise InvalidInput.field("file", "empty file: a header row is required")
    if 1 in lines.bad:
        raise InvalidInput.field("file", "the header row is not valid UTF-8")
    mapping = header_columns(header)
    report = ImportReport()
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        async with transaction(session):
            result = await upsert_contacts(
                session, org_id=org_id, rows=batch, list_ids=list_ids or [], first_index=report.rows
            )
        report.rows += len(batch)
        report.created += result.created
        report.updated += result.updated
        report.failed += result.failed
        report.add_errors(result.errors)
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()
        if after_batch is not None:
            await after_batch(report)

    next_line = 2  # the header is line 1
    try:
        for record in reader:
            broken = [n for n in range(next_line, reader.line_num + 1) if n in lines.bad]
            next_line = reader.line_num + 1
            if broken:
                if batch:
                    await flush()  # so the rows before keep their indexes
                report.add_errors(
                    [FieldError("row", f"line {broken[0]} is not valid UTF-8", report.rows)]
                )
                report.rows += 1
                report.failed += 1
                continue
            batch.append(row_from_record(record, mapping))
            if len(batch) >= batch_size:
                await flush()
    except csv.Error as exc:
        at = report.rows + len(batch)
        report.add_errors(
            [FieldError("file", f"stopped reading at line {reader.line_num}: {exc}", at)]
        )
    if batch:
        await flush()
    return report
