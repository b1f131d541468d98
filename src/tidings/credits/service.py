"""Credits: an org's balance, its append-only ledger, and its price table.

    accepted send ──▶ cost of its queued/held messages (price × segments) ──▶ reserve()
                      (same transaction as the messages: refused → nothing is queued)
    failed / cancelled message ──▶ release() of its reserved cost (one entry per batch)
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

from sqlalchemy import ColumnElement, Table, case, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.credits.models import CreditBalance, CreditEntry, Price
from tidings.db.base import utcnow
from tidings.db.dialect import insert_ignoring_conflicts
from tidings.errors import FieldError, InsufficientCredit, InvalidInput
from tidings.outbox.models import Message
from tidings.outbox.status import RESERVED

MICRO = 1_000_000  # micro-credits per credit
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
    the matching queued/held messages (email: the price; SMS: the destination country's
    price per segment × the `segments` given, else the row's, else 1), then `reserve`.
    Returns the total reserved."""
    table = await price_table(session, org_id=org_id, channel=channel)
    if is_free(table):
        return 0
    m = MESSAGES.c
    price = price_expression(table, _destination_country()) if channel == "sms" else None
    count = literal(segments) if segments is not None else func.coalesce(m.segments, 1)
    cost: Any = price * count if price is not None else literal(price_of(table))
    condition = (m.org_id == org_id) & m.status.in_(sorted(RESERVED)) & where
    await session.execute(update(MESSAGES).where(condition).values(cost=cost))
    total = int(
        await session.scalar(select(func.coalesce(func.sum(m.cost), 0)).where(condition)) or 0
    )
    await reserve(session, org_id=org_id, amount=total, reference=reference)
    return total


async def release_messages(
    session: AsyncSession, *, org_id: int, where: ColumnElement[bool], reference: str, note: str
) -> int:
    """Release the reserved cost of the org's messages matching `where`, which the caller
    is about to end unsent (query helper): one SUM and, if non-zero, one entry."""
    m = MESSAGES.c
    total = int(
        await session.scalar(
            select(func.coalesce(func.sum(m.cost), 0)).where(m.org_id == org_id, where)
        )
        or 0
    )
    await release(session, org_id=org_id, amount=total, reference=reference, note=note)
    return total
