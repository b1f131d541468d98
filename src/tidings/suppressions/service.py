"""The per-org suppression list: addresses a channel must not send to, and why.

A suppression is keyed by (org, channel, address), the address normalised as contacts
store it (lower-cased email, E.164 phone), so the skip rule matches it with an equality
on the unique index. Which purposes it holds for depends on its reason (`applies`):
`unsubscribed` stops marketing only; every other reason stops everything, transactional
messages too (a bounced address does not exist; a complaint or a STOP is a refusal).

Where suppressions are read: broadcast expansion (`broadcasts/expand.py`, in SQL),
explicit recipients and single sends (`campaigns/recipients.address_or_skip`, fed by
`reasons`), and once more per claimed batch just before sending
(`dispatcher/queries.skip_suppressed`).

Service functions (`add`, `remove…`, `list_suppressions`, `export_rows`) are the use
cases of the routes; `suppress`, `reasons`, `note_soft_bounce` and `reset_soft_bounces`
are query helpers for other services (delivery reports, bounces, inbound SMS). All run in
their caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.normalize import normalize_email, normalize_phone
from tidings.db.base import utcnow
from tidings.db.dialect import insert_ignoring_conflicts, one_of
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.orgs.service import get_org
from tidings.suppressions.models import MARKETING_ONLY, SoftBounce, Suppression
from tidings.suppressions.schemas import SuppressionIn

REASONS = ("hard_bounce", "complaint", "unsubscribed", "stop_keyword", "soft_bounces", "manual")
CHANNELS = ("email", "sms")
LOOKUP_CHUNK = 500
SUPPRESSIONS = cast(Table, Suppression.__table__)
S = SUPPRESSIONS.c


def applies(reason: str, *, purpose: str) -> bool:
    """Whether a suppression for `reason` stops a message of this campaign purpose."""
    return purpose == "marketing" or reason not in MARKETING_ONLY


def normalize(channel: str, raw: str, *, region: str | None) -> str:
    """The address as contacts store it on `channel`. Raises ValueError with the reason."""
    if channel == "email":
        return normalize_email(raw)
    if channel == "sms":
        return normalize_phone(raw, region)
    raise ValueError("channel: email or sms")


# --- query helpers --------------------------------------------------------------------


async def suppress(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    address: str,
    reason: str,
    source: str,
    note: str | None = None,
) -> None:
    """Put a normalised address on the list (query helper; idempotent).

    An address already listed keeps its row, except that a reason stopping every purpose
    replaces `unsubscribed` (a later hard bounce must stop transactional mail too).
    """
    await _write(
        session,
        org_id=org_id,
        rows=[{"channel": channel, "address": address, "reason": reason, "source": source,
               "note": note}],
        now=utcnow(),
    )  # fmt: skip


async def suppress_hard_bounce(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    address: str,
    source: str,
    note: str | None,
) -> None:
    """A hard bounce: the address does not take mail, so nothing more goes to it, of any
    purpose. The one rule for a bounce report (`bounces.service`, source `dsn`) and for
    a provider that refused the address while sending (`dispatcher.queries.record`,
    source `smtp`). Query helper; idempotent."""
    await suppress(
        session,
        org_id=org_id,
        channel=channel,
        address=address,
        reason="hard_bounce",
        source=source,
        note=note,
    )


async def _write(
    session: AsyncSession, *, org_id: int, rows: Sequence[dict[str, Any]], now: datetime
) -> None:
    if not rows:
        return
    await session.execute(
        insert_ignoring_conflicts(session, SUPPRESSIONS),
        [{"org_id": org_id, "created_at": now, **row} for row in rows],
    )
    broader = [row for row in rows if row["reason"] not in MARKETING_ONLY]
    if broader:
        await session.execute(
            update(SUPPRESSIONS)
            .where(
                S.org_id == org_id,
                S.channel == bindparam("c"),
                S.address == bindparam("a"),
                or_(*(S.reason == r for r in sorted(MARKETING_ONLY))),  # no IN: executemany
            )
            .values(reason=bindparam("r"), source=bindparam("s"), note=bindparam("n")),
            [
                {"c": r["channel"], "a": r["address"], "r": r["reason"], "s": r["source"],
                 "n": r["note"]}
                for r in broader
            ],
        )  # fmt: skip


async def reasons(
    session: AsyncSession, *, org_id: int, channel: str, addresses: Iterable[str | None]
) -> dict[str, str]:
    """The suppression reason of each listed address among `addresses` (read only; one
    indexed query per 500 addresses)."""
    wanted = sorted({a for a in addresses if a is not None})
    found: dict[str, str] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        rows = await session.execute(
            select(S.address, S.reason).where(
                S.org_id == org_id,
                S.channel == channel,
                one_of(session, S.address, wanted[start : start + LOOKUP_CHUNK]),
            )
        )
        found.update({address: reason for address, reason in rows})  # noqa: C416 — rows, not pairs
    return found


async def is_suppressed(
    session: AsyncSession, *, org_id: int, channel: str, address: str, purpose: str = "marketing"
) -> bool:
    """Whether a message of `purpose` to this normalised address would be skipped."""
    reason = (await reasons(session, org_id=org_id, channel=channel, addresses=[address])).get(
        address
    )
    return reason is not None and applies(reason, purpose=purpose)


async def note_soft_bounce(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    address: str,
    limit: int,
    source: str,
    now: datetime | None = None,
) -> bool:
    """Count a soft bounce of the address (query helper). At `limit` soft bounces in a
    row (`TIDINGS_SOFT_BOUNCE_LIMIT`) the address is suppressed with reason
    `soft_bounces`; returns whether it was. A delivery resets the count
    (`reset_soft_bounces`)."""
    now = now or utcnow()
    await session.execute(
        insert_ignoring_conflicts(session, SoftBounce),
        [{"org_id": org_id, "address": address, "count": 0, "last_at": now}],
    )
    count = await session.scalar(
        update(SoftBounce)
        .where(SoftBounce.org_id == org_id, SoftBounce.address == address)
        .values(count=SoftBounce.count + 1, last_at=now)
        .returning(SoftBounce.count)
    )
    if count is not None and count >= limit:
        await suppress(
            session,
            org_id=org_id,
            channel=channel,
            address=address,
            reason="soft_bounces",
            source=source,
            note=f"{count} soft bounces in a row",
        )
        return True
    return False


async def reset_soft_bounces(session: AsyncSession, *, org_id: int, address: str) -> None:
    """A delivery to the address: its soft bounces no longer count (query helper)."""
    await session.execute(
        delete(SoftBounce).where(SoftBounce.org_id == org_id, SoftBounce.address == address)
    )


# --- use cases ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowOutcome:
    index: int
    id: int | None
    status: str  # created, exists, failed


@dataclass(frozen=True, slots=True)
class AddReport:
    created: int
    existing: int
    failed: int
    outcomes: list[RowOutcome]
    errors: list[FieldError]


def _validate(
    index: int, raw: Any, *, region: str | None
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    try:
        row = SuppressionIn.model_validate(raw)
    except ValidationError as exc:
        return None, [
            FieldError(".".join(str(p) for p in e["loc"]) or "row", e["msg"], index)
            for e in exc.errors(include_url=False)
        ]
    try:
        address = normalize(row.channel, row.address, region=region)
    except ValueError as exc:
        return None, [FieldError("address", str(exc), index)]
    values = {"channel": row.channel, "address": address, "reason": row.reason,
              "source": row.source, "note": row.note}  # fmt: skip
    return values, []


async def add(session: AsyncSession, *, org_id: int, rows: Sequence[Any]) -> AddReport:
    """Add a batch of suppressions; bad rows are reported by index and the good ones
    stored. Adding a listed address again changes nothing (see `suppress`)."""
    org = await get_org(session, org_id=org_id)
    region = org.phone_region
    valid: dict[int, dict[str, Any]] = {}
    errors: list[FieldError] = []
    for index, raw in enumerate(rows):
        values, row_errors = _validate(index, raw, region=region)
        errors += row_errors
        if values is not None:
            valid[index] = values
    keys = {(v["channel"], v["address"]) for v in valid.values()}
    before = await _ids(session, org_id=org_id, keys=keys)
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for values in valid.values():
        unique[(values["channel"], values["address"])] = values  # the last row wins
    await _write(session, org_id=org_id, rows=list(unique.values()), now=utcnow())
    after = await _ids(session, org_id=org_id, keys=keys - set(before))
    ids = before | after
    outcomes = []
    for index in range(len(rows)):
        if index not in valid:
            outcomes.append(RowOutcome(index, None, "failed"))
            continue
        key = (valid[index]["channel"], valid[index]["address"])
        outcomes.append(RowOutcome(index, ids.get(key), "exists" if key in before else "created"))
    return AddReport(
        created=len(after),
        existing=sum(1 for key in unique if key in before),
        failed=len(rows) - len(valid),
        outcomes=outcomes,
        errors=errors,
    )


async def _ids(
    session: AsyncSession, *, org_id: int, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for channel in CHANNELS:
        addresses = sorted(a for c, a in keys if c == channel)
        for start in range(0, len(addresses), LOOKUP_CHUNK):
            rows = await session.execute(
                select(S.id, S.address).where(
                    S.org_id == org_id,
                    S.channel == channel,
                    S.address.in_(addresses[start : start + LOOKUP_CHUNK]),
                )
            )
            found.update({(channel, address): ident for ident, address in rows})
    return found


async def get_suppression(
    session: AsyncSession, *, org_id: int, suppression_id: int
) -> Suppression:
    return await get_owned(
        session, Suppression, org_id=org_id, ident=suppression_id, what="suppression"
    )


async def remove(session: AsyncSession, *, org_id: int, suppression_id: int) -> None:
    """Take one suppression off the list (NotFound if the org has no such row)."""
    result = await session.execute(
        delete(SUPPRESSIONS).where(S.org_id == org_id, S.id == suppression_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("suppression", suppression_id)


async def remove_address(session: AsyncSession, *, org_id: int, channel: str, address: str) -> None:
    """Take an address off the channel's list; `address` is normalised first."""
    org = await get_org(session, org_id=org_id)
    try:
        normalised = normalize(channel, address, region=org.phone_region)
    except ValueError as exc:
        raise InvalidInput.field("address", str(exc)) from None
    result = await session.execute(
        delete(SUPPRESSIONS).where(
            S.org_id == org_id, S.channel == channel, S.address == normalised
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("suppression", f"{channel}:{normalised}")


async def list_suppressions(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    channel: str | None = None,
    reason: str | None = None,
) -> list[Suppression]:
    query = owned_page(Suppression, org_id=org_id, after_id=after_id, limit=limit)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    return list(await session.scalars(query))


EXPORT_COLUMNS = ("id", "channel", "address", "reason", "source", "note", "created_at")


async def export_rows(
    session: AsyncSession, *, org_id: int, batch: int = 1_000
) -> AsyncIterator[tuple[Any, ...]]:
    """Every suppression of the org in id order, `EXPORT_COLUMNS` per row, read a page at a
    time so memory stays flat."""
    after = 0
    while True:
        rows = (
            await session.execute(
                select(*(S[c] for c in EXPORT_COLUMNS))
                .where(S.org_id == org_id, S.id > after)
                .order_by(S.id)
                .limit(batch)
            )
        ).all()
        for row in rows:
            yield tuple(row)
        if len(rows) < batch:
            return
        after = rows[-1][0]
