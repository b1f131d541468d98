"""Credits: an org's balance, its append-only ledger, and its price table.

    accepted send ──▶ cost of its queued/held messages (price × segments) ──▶ reserve()
                      (same transaction as the messages: refused → nothing is queued;
                      a test key's messages cost nothing; an SMS reserves the segments
                      known then, 1 unless its text is already final)
    rendered SMS ──▶ settle(): its final text's segments at the same price per segment,
                     the difference taken or given back before hand-over; one the
                     balance cannot cover fails alone ("insufficient credit")
    failed / skipped / cancelled message ──▶ release() of its cost (one entry per batch)
    operator ──▶ top_up()

Amounts are micro-credits (1 credit = 1,000,000) everywhere below the API. The balance
moves only by one conditional UPDATE (`balance >= cost` for a reservation), so concurrent
sends can never take it below zero: on PostgreSQL the second UPDATE waits for the first's
row lock and re-checks the condition; SQLite has one writer at a time. Each move appends a
`CreditEntry` carrying the balance after it, in the same transaction.

No price row means free: a new org sends without credit until an operator sets prices
(docs/credits.md). A zero cost writes no ledger entry and takes no lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Table,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.contacts.models import Contact
from tidings.credits.models import CreditBalance, CreditEntry, Price
from tidings.db.base import utcnow
from tidings.db.dialect import for_update, insert_ignoring_conflicts, json_rows
from tidings.errors import FieldError, InsufficientCredit, InvalidInput
from tidings.outbox.models import Message
from tidings.outbox.status import RESERVED

MICRO = 1_000_000  # micro-credits per credit
INSUFFICIENT_CREDIT = "insufficient credit"  # the reason of what the balance could not cover
ANY_COUNTRY = "*"
CHANNELS = ("email", "sms")
BALANCES = cast(Table, CreditBalance.__table__)
ENTRIES = cast(Table, CreditEntry.__table__)
MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)


@dataclass(frozen=True, slots=True)
class PriceRow:
    channel: str
    country: str
    amount: int  # micro-credits per email, or per SMS segment


# --- prices ---------------------------------------------------------------------------


async def list_prices(session: AsyncSession, *, org_id: int) -> list[Price]:
    rows = await session.scalars(
        select(Price).where(Price.org_id == org_id).order_by(Price.channel, Price.country)
    )
    return list(rows)


async def price_table(session: AsyncSession, *, org_id: int, channel: str) -> dict[str, int]:
    """country ("*" = any other) → micro-credits, for one channel (query helper)."""
    rows = await session.execute(
        select(Price.country, Price.amount).where(Price.org_id == org_id, Price.channel == channel)
    )
    return {country: int(amount) for country, amount in rows}


def price_of(table: Mapping[str, int], *, country: str | None = None) -> int:
    """The price for one destination: the country's own row, else "*", else 0 (free)."""
    if country is not None and country in table:
        return table[country]
    return table.get(ANY_COUNTRY, 0)


def price_expression(table: Mapping[str, int], country: Any) -> ColumnElement[int]:
    """`price_of` in SQL, for a column (or expression) holding the destination country."""
    fallback = literal(price_of(table))
    exact = {c: a for c, a in table.items() if c != ANY_COUNTRY}
    if not exact:
        return fallback
    return case(*((country == c, literal(a)) for c, a in sorted(exact.items())), else_=fallback)


def is_free(table: Mapping[str, int]) -> bool:
    return not any(table.values())


async def set_prices(
    session: AsyncSession, *, org_id: int, prices: Sequence[PriceRow]
) -> list[Price]:
    """Replace the org's whole price table. An empty list: all free."""
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, p in enumerate(prices):
        if p.channel not in CHANNELS:
            errors.append(FieldError(f"prices[{i}].channel", "email or sms", i))
        if p.channel == "email" and p.country != ANY_COUNTRY:
            errors.append(FieldError(f"prices[{i}].country", 'email prices are for "*"', i))
        if p.amount < 0:
            errors.append(FieldError(f"prices[{i}].amount", "not negative", i))
        if (p.channel, p.country) in seen:
            errors.append(FieldError(f"prices[{i}]", "channel and country named twice", i))
        seen.add((p.channel, p.country))
    if errors:
        raise InvalidInput(errors)
    now = utcnow()
    await session.execute(delete(Price).where(Price.org_id == org_id))
    if prices:
        await session.execute(
            insert(Price),
            [
                {
                    "org_id": org_id,
                    "channel": p.channel,
                    "country": p.country,
                    "amount": p.amount,
                    "created_at": now,
                    "updated_at": now,
                }
                for p in prices
            ],
        )
    return await list_prices(session, org_id=org_id)


# --- the ledger -----------------------------------------------------------------------


async def balance_of(session: AsyncSession, *, org_id: int) -> int:
    value = await session.scalar(
        select(CreditBalance.balance).where(CreditBalance.org_id == org_id)
    )
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class CreditsView:
    balance: int
    entries: list[CreditEntry]


async def credits_view(
    session: AsyncSession, *, org_id: int, before_id: int | None, limit: int
) -> CreditsView:
    """The balance and a page of the ledger (read only)."""
    balance = await balance_of(session, org_id=org_id)
    entries = await list_entries(session, org_id=org_id, before_id=before_id, limit=limit)
    return CreditsView(balance, entries)


async def list_entries(
    session: AsyncSession, *, org_id: int, before_id: int | None, limit: int
) -> list[CreditEntry]:
    """The org's ledger, newest first, entries older than the cursor's id."""
    query = select(CreditEntry).where(CreditEntry.org_id == org_id)
    if before_id is not None:
        query = query.where(CreditEntry.id < before_id)
    return list(await session.scalars(query.order_by(CreditEntry.id.desc()).limit(limit)))


async def _append(
    session: AsyncSession,
    *,
    org_id: int,
    amount: int,
    kind: str,
    balance_after: int,
    reference: str | None,
    note: str | None,
) -> None:
    await session.execute(
        insert(ENTRIES).values(
            org_id=org_id,
            amount=amount,
            kind=kind,
            reference=reference,
            note=note,
            balance_after=balance_after,
            created_at=utcnow(),
        )
    )


async def reserve(
    session: AsyncSession,
    *,
    org_id: int,
    amount: int,
    reference: str | None = None,
    note: str | None = None,
) -> int | None:
    """Take `amount` micro-credits, or raise InsufficientCredit (query helper: the caller
    owns the transaction, and rolls it back on the error). Side effects: the balance
    moves by one conditional UPDATE and an entry (kind "reserve") is appended. A missing
    balance row is a balance of 0, which no positive cost passes. Returns the balance
    after, or None for a zero cost (nothing written)."""
    if amount <= 0:
        return None
    after = await session.scalar(
        update(BALANCES)
        .where(BALANCES.c.org_id == org_id, BALANCES.c.balance >= amount)
        .values(balance=BALANCES.c.balance - amount, updated_at=utcnow())
        .returning(BALANCES.c.balance)
    )
    if after is None:
        raise InsufficientCredit(needed=amount, balance=await balance_of(session, org_id=org_id))
    await _append(
        session,
        org_id=org_id,
        amount=-amount,
        kind="reserve",
        balance_after=int(after),
        reference=reference,
        note=note,
    )
    return int(after)


async def credit(
    session: AsyncSession,
    *,
    org_id: int,
    amount: int,
    kind: str,
    reference: str | None = None,
    note: str | None = None,
) -> int | None:
    """Add `amount` micro-credits (query helper). Side effects: the balance row is
    created at 0 if missing, moved by one UPDATE, and an entry of `kind` appended.
    Returns the balance after, or None for a zero amount (nothing written)."""
    if amount <= 0:
        return None
    now = utcnow()
    await session.execute(
        insert_ignoring_conflicts(session, BALANCES).values(
            org_id=org_id, balance=0, updated_at=now
        )
    )
    after = await session.scalar(
        update(BALANCES)
        .where(BALANCES.c.org_id == org_id)
        .values(balance=BALANCES.c.balance + amount, updated_at=now)
        .returning(BALANCES.c.balance)
    )
    assert after is not None
    await _append(
        session,
        org_id=org_id,
        amount=amount,
        kind=kind,
        balance_after=int(after),
        reference=reference,
        note=note,
    )
    return int(after)


async def release(
    session: AsyncSession, *, org_id: int, amount: int, reference: str | None, note: str
) -> int | None:
    """Give back what messages that will never be sent had reserved (query helper)."""
    return await credit(
        session, org_id=org_id, amount=amount, kind="release", reference=reference, note=note
    )


async def top_up(
    session: AsyncSession, *, org_id: int, amount: int, note: str | None = None
) -> CreditEntry:
    """Add credit to the org; the new ledger entry."""
    if amount <= 0:
        raise InvalidInput.field("amount", "greater than 0")
    await credit(session, org_id=org_id, amount=amount, kind="top-up", note=note)
    entry = await session.scalar(
        select(CreditEntry)
        .where(CreditEntry.org_id == org_id, CreditEntry.kind == "top-up")
        .order_by(CreditEntry.id.desc())
        .limit(1)
    )
    assert entry is not None
    return entry


# --- charging messages ----------------------------------------------------------------


def _destination_country() -> ColumnElement[str]:
    return (
        select(CONTACTS.c.phone_country)
        .where(CONTACTS.c.id == MESSAGES.c.contact_id)
        .scalar_subquery()
    )


async def charge_messages(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    where: ColumnElement[bool],
    reference: str,
    segments: int | None = None,
) -> int:
    """Price the org's just-created messages matching `where` and reserve their sum
    (query helper; InsufficientCredit rolls the caller's transaction back).

    Side effects, only when the channel has a non-zero price: one UPDATE sets `cost` on
    the matching queued/held messages not sent with a test key (email: the price; SMS:
    the destination country's price per segment × the `segments` given, else the row's,
    else 1, and `segments` to that count, so that `cost / segments` stays the price per
    segment `settle` charges the final text at), then `reserve`. Test-key messages only
    reach the sink: they cost nothing. Returns the total reserved."""
    table = await price_table(session, org_id=org_id, channel=channel)
    if is_free(table):
        return 0
    m = MESSAGES.c
    values: dict[str, Any]
    if channel == "sms":
        count = literal(segments) if segments is not None else func.coalesce(m.segments, 1)
        values = {"cost": price_expression(table, _destination_country()) * count,
                  "segments": count}  # fmt: skip
    else:
        values = {"cost": literal(price_of(table))}
    condition = (m.org_id == org_id) & m.status.in_(sorted(RESERVED)) & m.is_test.is_(False) & where
    await session.execute(update(MESSAGES).where(condition).values(**values))
    total = int(
        await session.scalar(select(func.coalesce(func.sum(m.cost), 0)).where(condition)) or 0
    )
    await reserve(session, org_id=org_id, amount=total, reference=reference)
    return total


# --- settling an SMS's segments once its text is known --------------------------------


@dataclass(frozen=True, slots=True)
class Settlement:
    """A charged SMS whose final text (links, invite URL, personal data in place) is
    known: what it reserved, for how many segments, and how many the text takes."""

    message_id: int
    org_id: int
    reserved: int
    reserved_segments: int
    segments: int

    @property
    def cost(self) -> int:
        """The price per segment it was accepted at × the segments of its final text."""
        return self.reserved // max(self.reserved_segments, 1) * self.segments


def settlement(
    *, message_id: int, org_id: int, reserved: int, reserved_segments: int | None, segments: int
) -> Settlement | None:
    """The settlement an SMS needs before it is handed over, or None when its final text
    costs what it reserved (a free message, or as many segments as reserved)."""
    if reserved <= 0 or segments == (reserved_segments or 1):
        return None
    return Settlement(message_id, org_id, reserved, reserved_segments or 1, segments)


async def settle(session: AsyncSession, *, settlements: Sequence[Settlement]) -> set[int]:
    """Charge, or give back, what each SMS's final text costs more, or less, than it
    reserved (query helper: the caller holds these messages' rows, and hands over only
    those settled). Side effects, per org: one `release` entry for the texts shorter
    than reserved; one `reserve` entry for the longer ones its balance covers, taken in
    message id order (the balance row locked and read: when the whole difference does not
    fit, each message is taken if it still fits); then one UPDATE sets the
    settled messages' `cost` and `segments`. Returns the ids the balance could not cover:
    they keep their reservation, which their failure ("insufficient credit") gives back."""
    by_org: dict[int, list[Settlement]] = {}
    for s in sorted(settlements, key=lambda s: s.message_id):
        by_org.setdefault(s.org_id, []).append(s)
    settled: list[Settlement] = []
    refused: set[int] = set()
    for org_id, items in sorted(by_org.items()):
        shorter = [s for s in items if s.cost < s.reserved]
        longer = [s for s in items if s.cost > s.reserved]
        await release(
            session,
            org_id=org_id,
            amount=sum(s.reserved - s.cost for s in shorter),
            reference=None,
            note="SMS settled: fewer segments than reserved",
        )
        taken = await _affordable(session, org_id=org_id, longer=longer)
        await reserve(
            session,
            org_id=org_id,
            amount=sum(s.cost - s.reserved for s in taken),
            note="SMS settled: more segments than reserved",
        )
        settled += shorter + taken
        refused |= {s.message_id for s in longer} - {s.message_id for s in taken}
    if settled:  # one UPDATE … FROM a JSON array of rows
        rows = [{"mid": s.message_id, "amt": s.cost, "seg": s.segments} for s in settled]
        v = json_rows(session, rows, _SETTLED)
        await session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == v["mid"])
            .values(cost=v["amt"], segments=v["seg"])
        )
    return refused


_SETTLED: dict[str, TypeEngine[Any]] = {"mid": BigInteger(), "amt": BigInteger(), "seg": Integer()}


async def _affordable(
    session: AsyncSession, *, org_id: int, longer: Sequence[Settlement]
) -> list[Settlement]:
    """The longer texts whose extra cost the org's balance covers: all of them when it
    covers their sum (the usual case), else each that still fits, in order. Side effect:
    the balance row is locked until the transaction ends (PostgreSQL), so the `reserve`
    that follows finds the balance read here."""
    needed = sum(s.cost - s.reserved for s in longer)
    if not needed:
        return []
    balance_row = select(BALANCES.c.balance).where(BALANCES.c.org_id == org_id)
    balance = int(await session.scalar(for_update(session, balance_row)) or 0)
    if needed <= balance:
        return list(longer)
    taken: list[Settlement] = []
    for s in longer:
        if s.cost - s.reserved <= balance:
            balance -= s.cost - s.reserved
            taken.append(s)
    return taken
