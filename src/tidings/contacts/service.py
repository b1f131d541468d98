"""Contacts: set-based bulk upsert, read, list and erase.

Upsert flow, in the caller's transaction (one per batch): validate every row (pure) →
merge rows of the batch that name the same person → look the batch's emails and phones up
in chunks → one INSERT … SELECT from a JSON array for new contacts, one executemany UPDATE
for known ones → list memberships, all in a savepoint that is retried when a concurrent
writer created one of these contacts first. A bad row is reported and skipped; it never
costs its neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.contacts.models import Contact
from tidings.contacts.normalize import (
    MAX_ATTRIBUTES_BYTES,
    ContactFields,
    too_large,
    validate_row,
)
from tidings.db.base import JSONDoc, utcnow
from tidings.db.dialect import json_rows, rows_by_keys
from tidings.db.owned import get_owned
from tidings.errors import FieldError, InvalidInput
from tidings.lists.models import ListMember
from tidings.lists.service import add_members, add_to_list, get_list, require_lists
from tidings.orgs.service import get_org

CONTACTS = cast(Table, Contact.__table__)
LOOKUP_CHUNK = 500
UPSERT_ATTEMPTS = 3
_COLUMNS = ("first_name", "last_name", "locale", "timezone", "email_status", "sms_status")


@dataclass(slots=True)
class RowOutcome:
    index: int
    contact_id: int | None
    status: str


@dataclass(slots=True)
class UpsertReport:
    created: int = 0
    updated: int = 0
    outcomes: list[RowOutcome] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "failed")


@dataclass(slots=True)
class _Slot:
    """One person named by one or more rows of a batch."""

    fields: ContactFields
    indexes: list[int]
    contact_id: int | None = None
    status: str = "failed"


def _chunks(items: Sequence[str], size: int = LOOKUP_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _merge_patch(base: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(base or {})
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _group_rows(
    rows: Sequence[object], *, region: str | None, first_index: int, errors: list[FieldError]
) -> tuple[list[_Slot], dict[int, str]]:
    """Validate rows and merge those naming the same email or phone into one slot."""
    slots: list[_Slot] = []
    failed: dict[int, str] = {}
    by_email: dict[str, _Slot] = {}
    by_phone: dict[str, _Slot] = {}
    for offset, raw in enumerate(rows):
        index = first_index + offset
        result = validate_row(raw, region=region)
        if isinstance(result, list):
            errors.extend(FieldError(e.field, e.reason, index) for e in result)
            failed[index] = "failed"
            continue
        by_e = by_email.get(result.email) if result.email else None
        by_p = by_phone.get(result.phone) if result.phone else None
        slot = by_e or by_p
        clash = None
        if by_e is not None and by_p is not None and by_e is not by_p:
            clash = FieldError("phone", "names another contact of this batch than the email", index)
        elif slot is not None and result.email and slot.fields.email not in (None, result.email):
            clash = FieldError(
                "email", f"differs from row {slot.indexes[0]} with this phone", index
            )
        elif slot is not None and result.phone and slot.fields.phone not in (None, result.phone):
            clash = FieldError(
                "phone", f"differs from row {slot.indexes[0]} with this email", index
            )
        if clash is not None:
            errors.append(clash)
            failed[index] = "failed"
            continue
        if slot is None:
            slot = _Slot(fields=result, indexes=[index])
            slots.append(slot)
        else:
            slot.indexes.append(index)
            slot.fields.email = slot.fields.email or result.email
            if slot.fields.phone is None:
                slot.fields.phone, slot.fields.phone_country = result.phone, result.phone_country
            slot.fields.values.update(result.values)
            if result.attributes is not None:
                slot.fields.attributes = {**(slot.fields.attributes or {}), **result.attributes}
        if result.email:
            by_email[result.email] = slot
        if result.phone:
            by_phone[result.phone] = slot
    return slots, failed


async def _existing(
    session: AsyncSession, *, org_id: int, column: Any, keys: list[str]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    table = cast(Table, Contact.__table__)
    for chunk in _chunks(keys):
        query = rows_by_keys(
            session, table=table, org_id=org_id, column=table.c[column.key], keys=list(chunk)
        )
        for row in (await session.execute(query)).mappings():
            found[row[column.key]] = row
    return found


async def _write_batch(
    session: AsyncSession, *, org_id: int, slots: list[_Slot], errors: list[FieldError]
) -> None:
    emails = [s.fields.email for s in slots if s.fields.email]
    phones = [s.fields.phone for s in slots if s.fields.phone]
    known_emails = await _existing(session, org_id=org_id, column=Contact.email, keys=emails)
    known_phones = await _existing(session, org_id=org_id, column=Contact.phone, keys=phones)

    now = utcnow()
    inserts: list[dict[str, Any]] = []
    insert_slots: list[_Slot] = []
    updates: list[dict[str, Any]] = []
    for slot in slots:
        f = slot.fields
        by_email = known_emails.get(f.email) if f.email else None
        by_phone = known_phones.get(f.phone) if f.phone else None
        if by_email is not None and by_phone is not None and by_email["id"] != by_phone["id"]:
            reason = f"belongs to contact {by_phone['id']}, the email to contact {by_email['id']}"
            errors.extend(FieldError("phone", reason, i) for i in slot.indexes)
            continue
        current = by_email or by_phone
        attributes = _merge_patch(current["attributes"] if current else None, f.attributes)
        # A new contact's attributes are the row's (checked) without its nulls: no larger.
        if current is not None and too_large(attributes):
            reason = f"would store more than {MAX_ATTRIBUTES_BYTES} bytes of attributes"
            errors.extend(FieldError("attributes", reason, i) for i in slot.indexes)
            continue
        if current is None:
            row = {name: f.values.get(name) for name in _COLUMNS}
            row["email_status"] = row["email_status"] or "subscribed"
            row["sms_status"] = row["sms_status"] or "subscribed"
            inserts.append(
                {
                    **row,
                    "email": f.email,
                    "phone": f.phone,
                    "phone_country": f.phone_country,
                    "attributes": attributes,
                }
            )
            insert_slots.append(slot)
            continue
        row = {name: f.values.get(name, current[name]) for name in _COLUMNS}
        updates.append(
            {
                **row,
                "id": current["id"],
                "email": f.email or current["email"],
                "phone": f.phone or current["phone"],
                "phone_country": f.phone_country if f.phone else current["phone_country"],
                "attributes": attributes,
                "updated_at": now,
            }
        )
        slot.contact_id, slot.status = current["id"], "updated"

    if inserts:
        created = await _insert_contacts(session, org_id=org_id, rows=inserts, now=now)
        for slot in insert_slots:
            slot.contact_id, slot.status = created[slot.fields.email, slot.fields.phone], "created"
    if updates:
        await session.execute(update(Contact), updates)


_NEW_CONTACT: dict[str, TypeEngine[Any]] = {
    **{name: String() for name in (*_COLUMNS, "email", "phone", "phone_country")},
    "attributes": JSONDoc,
}


async def _insert_contacts(
    session: AsyncSession, *, org_id: int, rows: list[dict[str, Any]], now: datetime
) -> dict[tuple[str | None, str | None], int]:
    """Side effect: the org's new contacts, `rows` (the keys of `_NEW_CONTACT`), in one
    INSERT … SELECT from a JSON parameter. Their ids by (email, phone), which are unique
    within a batch and the org."""
    v = json_rows(session, rows, _NEW_CONTACT)
    stamp = literal(now, CONTACTS.c.created_at.type)
    values = select(*v.values(), literal(org_id, CONTACTS.c.org_id.type), stamp, stamp)
    stmt = (
        insert(CONTACTS)
        .from_select([*v, "org_id", "created_at", "updated_at"], values)
        .returning(CONTACTS.c.id, CONTACTS.c.email, CONTACTS.c.phone)
    )
    return {(row.email, row.phone): row.id for row in await session.execute(stmt)}


async def upsert_contacts(
    session: AsyncSession,
    *,
    org_id: int,
    rows: Sequence[object],
    list_ids: Sequence[int] = (),
    first_index: int = 0,
) -> UpsertReport:
    """Create or update contacts keyed by email and/or phone, in the caller's transaction.

    Rows that fail validation, or whose email and phone belong to two different contacts,
    are reported by index (`first_index` + position) and field; the others are stored and
    join every list in `list_ids`. Rows of the batch naming the same person are merged,
    later rows winning. The writes are made in a savepoint: when a concurrent writer
    created one of these contacts first (a unique violation), only the savepoint is rolled
    back and the batch is looked up and written again, up to UPSERT_ATTEMPTS times.
    """
    org = await get_org(session, org_id=org_id)
    region = org.phone_region
    await require_lists(session, org_id=org_id, list_ids=list_ids)
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        errors: list[FieldError] = []
        slots, failed = _group_rows(rows, region=region, first_index=first_index, errors=errors)
        try:
            async with session.begin_nested():
                await _write_batch(session, org_id=org_id, slots=slots, errors=errors)
                stored = [s.contact_id for s in slots if s.contact_id is not None]
                for list_id in list_ids if stored else ():
                    await add_to_list(session, org_id=org_id, list_id=list_id, contact_ids=stored)
            break
        except IntegrityError:
            # A concurrent writer created one of these contacts first: look again.
            if attempt == UPSERT_ATTEMPTS:
                raise
    report = UpsertReport(errors=sorted(errors, key=lambda e: e.index or 0))
    for slot in slots:
        report.created += slot.status == "created"
        report.updated += slot.status == "updated"
        report.outcomes.extend(RowOutcome(i, slot.contact_id, slot.status) for i in slot.indexes)
    report.outcomes.extend(RowOutcome(i, None, s) for i, s in failed.items())
    report.outcomes.sort(key=lambda o: o.index)
    return report


async def get_contact(session: AsyncSession, *, org_id: int, contact_id: int) -> Contact:
    return await get_owned(session, Contact, org_id=org_id, ident=contact_id, what="contact")


async def list_contacts(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    email: str | None = None,
    phone: str | None = None,
    list_id: int | None = None,
) -> list[Contact]:
    """A page of contacts in id order, optionally filtered by exact email, phone or list."""
    query = select(Contact).where(Contact.org_id == org_id)
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    if email is not None:
        query = query.where(Contact.email == email.strip().lower())
    if phone is not None:
        query = query.where(Contact.phone == phone.strip())
    if list_id is not None:
        members = select(ListMember.contact_id).where(
            ListMember.org_id == org_id, ListMember.list_id == list_id
        )
        query = query.where(Contact.id.in_(members))
    return list(await session.scalars(query.order_by(Contact.id).limit(limit)))


async def join_list(
    session: AsyncSession, *, org_id: int, list_id: int, contact_ids: Sequence[int]
) -> int:
    """Add contacts to the org's list; ids that are not live contacts of the org are
    InvalidInput, by index. Returns how many joined (members stay members)."""
    await get_list(session, org_id=org_id, list_id=list_id)  # NotFound first
    wanted = list(dict.fromkeys(contact_ids))
    live = rows_by_keys(
        session,
        table=CONTACTS,
        org_id=org_id,
        column=CONTACTS.c.id,
        keys=wanted,
        columns=("id", "erased_at"),
    )
    found = {row.id for row in await session.execute(live) if row.erased_at is None}
    InvalidInput.unless_known("contact_ids", "contact", contact_ids, found)
    return await add_members(session, org_id=org_id, list_id=list_id, contact_ids=wanted)
