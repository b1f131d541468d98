"""Broadcasts: create, read, pause, resume, cancel; and `start_due`, which the dispatcher
calls to expand a due broadcast and set it SENDING in one transaction.

"Send now" is a broadcast scheduled for now: the dispatcher expands it on its next tick
(about a second), so creating a broadcast of a million recipients answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, case, insert, literal, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.broadcasts.expand import expand
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.status import BroadcastStatus, transition
from tidings.campaigns.models import Campaign
from tidings.campaigns.recipients import address_or_skip
from tidings.campaigns.service import get_campaign
from tidings.contacts.models import Contact
from tidings.contacts.normalize import MAX_ATTRIBUTES_BYTES, too_large
from tidings.contacts.service import upsert_contacts
from tidings.credits.service import charge_messages, release_messages
from tidings.db.base import JSONDoc, utcnow
from tidings.db.dialect import json_rows, rows_by_keys
from tidings.db.engine import begin_write
from tidings.db.owned import get_owned, owned_page
from tidings.errors import Conflict, FieldError, InsufficientCredit, InvalidInput, NotFound
from tidings.lists.service import add_to_list, require_lists
from tidings.messages.models import Message
from tidings.orgs.service import get_org
from tidings.segments.models import Segment
from tidings.suppressions import service as suppressions

S = BroadcastStatus
MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)


@dataclass(frozen=True, slots=True)
class Created:
    """`rejected`: explicit recipients not accepted (bad rows); `skipped`: accepted ones
    whose message is skipped (no address, unsubscribed, …). Both by the row's index."""

    broadcast: Broadcast
    rejected: list[FieldError]
    skipped: list[FieldError]


@dataclass(frozen=True, slots=True)
class _Accepted:
    variables: dict[int, dict[str, Any] | None]  # contact id → its message's variables
    index: dict[int, int]  # contact id → the (last) row that named it


async def _explicit_recipients(
    session: AsyncSession, *, org_id: int, rows: list[Any]
) -> tuple[_Accepted, list[FieldError]]:
    """Upsert the rows (their own transaction); the contacts accepted, and the rejects."""
    rejected: list[FieldError] = []
    contact_rows: list[Any] = []
    variables: list[dict[str, Any] | None] = []
    for index, row in enumerate(rows):
        extra = row.pop("variables", None) if isinstance(row, dict) else None
        if extra is not None and (not isinstance(extra, dict) or too_large(extra)):
            reason = f"an object of at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"
            rejected.append(FieldError(f"recipients[{index}].variables", reason, index))
            row = None  # reported here; the upsert below skips it with its own error
        contact_rows.append(row if row is not None else {})
        variables.append(extra)
    report = await upsert_contacts(session, org_id=org_id, rows=contact_rows)
    bad = {e.index for e in rejected}
    rejected += [
        FieldError(f"recipients[{e.index}].{e.field}", e.reason, e.index)
        for e in report.errors
        if e.index not in bad
    ]
    bad |= {e.index for e in report.errors}
    accepted = _Accepted({}, {})
    for outcome in report.outcomes:  # a contact named twice: its last row's variables
        if outcome.contact_id is not None and outcome.index not in bad:
            accepted.variables[outcome.contact_id] = variables[outcome.index] or None
            accepted.index[outcome.contact_id] = outcome.index
    return accepted, sorted(rejected, key=lambda e: e.index or 0)


async def _hold_messages(
    session: AsyncSession,
    *,
    broadcast: Broadcast,
    campaign: Campaign,
    recipients: dict[int, dict[str, Any] | None],
    now: datetime,
) -> dict[int, str]:
    """Messages for explicit recipients, `held` until the broadcast starts (or skipped);
    the skip reasons by contact id."""
    if not recipients:
        return {}
    org = await get_org(session, org_id=broadcast.org_id)
    found = await session.execute(
        rows_by_keys(
            session,
            table=CONTACTS,
            org_id=broadcast.org_id,
            column=CONTACTS.c.id,
            keys=list(recipients),
            columns=("id", "email", "phone", "phone_country", "email_status", "sms_status"),
        )
    )
    contacts = found.all()
    suppressed = await suppressions.reasons(
        session,
        org_id=broadcast.org_id,
        channel=campaign.channel,
        addresses=(c.email if campaign.channel == "email" else c.phone for c in contacts),
    )
    rows: list[dict[str, Any]] = []
    skipped: dict[int, str] = {}
    for contact in contacts:
        address, reason = address_or_skip(
            campaign, contact, sms_countries=org.sms_countries, suppressed=suppressed
        )
        rows.append(
            {
                "contact_id": contact.id,
                "recipient": address,
                "variables": recipients[contact.id],
                "status": "skipped" if reason else "held",
                "reason": reason,
            }
        )
        if reason:
            skipped[contact.id] = reason
    v = json_rows(session, rows, _HELD)
    m, stamp = MESSAGES.c, literal(now, MESSAGES.c.created_at.type)
    constants = {
        "org_id": literal(broadcast.org_id, m.org_id.type),
        "broadcast_id": literal(broadcast.id, m.broadcast_id.type),
        "campaign_id": literal(campaign.id, m.campaign_id.type),
        "channel": literal(campaign.channel, m.channel.type),
        "is_test": literal(broadcast.is_test, m.is_test.type),
        "attempts": literal(0, m.attempts.type),
        "due_at": literal(broadcast.scheduled_at or now, m.due_at.type),
        "created_at": stamp,
        "finished_at": case((v["status"] == "skipped", stamp), else_=null()),
    }
    held = select(*v.values(), *constants.values())
    await session.execute(insert(MESSAGES).from_select([*v, *constants], held))
    return skipped


_HELD: dict[str, TypeEngine[Any]] = {
    "contact_id": BigInteger(),
    "recipient": String(),
    "variables": JSONDoc,
    "status": String(),
    "reason": String(),
}  # a held message's own columns; the rest are the broadcast's


async def _require_segments(session: AsyncSession, *, org_id: int, segment_ids: list[int]) -> None:
    """InvalidInput naming each id that is not one of the org's segments, by its index."""
    if not segment_ids:
        return
    found = set(
        await session.scalars(
            select(Segment.id).where(Segment.org_id == org_id, Segment.id.in_(segment_ids))
        )
    )
    missing = [
        FieldError(f"segment_ids[{i}]", f"segment {sid} does not exist", i)
        for i, sid in enumerate(segment_ids)
        if sid not in found
    ]
    if missing:
        raise InvalidInput(missing)


async def create_broadcast(
    session: AsyncSession,
    *,
    org_id: int,
    body: BroadcastCreate,
    is_test: bool = False,
    now: datetime | None = None,
    remember_in: int | None = None,
) -> Created:
    """`remember_in`: a list the explicit recipients join (a campaign's recipient list)."""
    now = now or utcnow()
    # A 404 for an unknown campaign before any contact is upserted for it.
    await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    await session.rollback()
    recipients = _Accepted({}, {})
    rejected: list[FieldError] = []
    if body.recipients:
        recipients, rejected = await _explicit_recipients(
            session,
            org_id=org_id,
            rows=[dict(r) if isinstance(r, dict) else r for r in body.recipients],
        )
    await begin_write(session)
    campaign = await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    await require_lists(session, org_id=org_id, list_ids=body.list_ids)
    await _require_segments(session, org_id=org_id, segment_ids=body.segment_ids)
    broadcast = Broadcast(
        org_id=org_id,
        campaign_id=body.campaign_id,
        name=body.name,
        status=S.DRAFT if body.draft else S.SCHEDULED,
        audience={
            "list_ids": body.list_ids,
            "segment_ids": body.segment_ids,
            "send_to_all": body.send_to_all,
            "recipients": len(recipients.variables),
        },
        scheduled_at=None if body.draft else (body.scheduled_at or now),
        is_test=is_test,
    )
    session.add(broadcast)
    await session.flush()
    skips = await _hold_messages(
        session, broadcast=broadcast, campaign=campaign, recipients=recipients.variables, now=now
    )
    if recipients.variables:  # reserved now: the send is accepted (402 queues nothing)
        await charge_messages(
            session,
            org_id=org_id,
            channel=campaign.channel,
            where=MESSAGES.c.broadcast_id == broadcast.id,
            reference=f"broadcast:{broadcast.id}",
        )
    if remember_in is not None and recipients.variables:
        await add_to_list(
            session, org_id=org_id, list_id=remember_in, contact_ids=list(recipients.variables)
        )
    await session.commit()
    skipped = [
        FieldError(f"recipients[{i}]", reason, i)
        for contact_id, reason in skips.items()
        for i in [recipients.index[contact_id]]
    ]
    return Created(broadcast, rejected, sorted(skipped, key=lambda e: e.index or 0))


async def get_broadcast(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    return await get_owned(session, Broadcast, org_id=org_id, ident=broadcast_id, what="broadcast")


async def list_broadcasts(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[Broadcast]:
    page = owned_page(Broadcast, org_id=org_id, after_id=after_id, limit=limit)
    return list(await session.scalars(page))


async def _move_messages(
    session: AsyncSession, *, broadcast_id: int, source: str, target: str, now: datetime
) -> None:
    # A resumed message keeps its due_at: one past is due now anyway, and one ahead is a
    # backoff or a provider's Retry-After that resuming must not cut short.
    values: dict[str, object] = {"status": target}
    if target == "cancelled":
        values.update(finished_at=now, reason="broadcast cancelled")
    await session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.broadcast_id == broadcast_id, MESSAGES.c.status == source)
        .values(**values)
    )


async def send_draft(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """DRAFT → SCHEDULED for now (its own scheduled_at if that is still ahead)."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.campaign_id is None:
        raise Conflict("attach a template (a campaign) to this draft before sending it")
    broadcast.status = transition(S(broadcast.status), S.SCHEDULED)
    if broadcast.scheduled_at is None or broadcast.scheduled_at < now:
        broadcast.scheduled_at = now
    await session.commit()
    return broadcast


def _schedule(broadcast: Broadcast, *, campaign_id: int, now: datetime) -> None:
    """Attach the campaign; SCHEDULED at the broadcast's own time if still ahead, else now."""
    broadcast.campaign_id = campaign_id
    broadcast.status = transition(S(broadcast.status), S.SCHEDULED)
    if broadcast.scheduled_at is None or broadcast.scheduled_at < now:
        broadcast.scheduled_at = now


async def _attachable(session: AsyncSession, *, org_id: int, campaign_id: int) -> None:
    # Named in the body, not the path: an unknown campaign is bad input, not a 404.
    try:
        await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    except NotFound as exc:
        raise InvalidInput.field("campaign_id", exc.detail) from None


async def create_for_audience(
    session: AsyncSession,
    *,
    org_id: int,
    name: str,
    segment_ids: list[int],
    send_to_all: bool,
    scheduled_at: datetime | None,
    campaign_id: int | None,
    is_test: bool = False,
    now: datetime | None = None,
) -> Broadcast:
    """A broadcast to segments or to all contacts (seed 002's shape).

    With a campaign it is SCHEDULED (at `scheduled_at`, or now when that is null or past).
    Without one it is a DRAFT that keeps `scheduled_at` until `attach_campaign`.
    """
    if not (segment_ids or send_to_all):
        raise InvalidInput.field("segment_ids", "choose an audience: segment_ids or send_to_all")
    now = now or utcnow()
    await begin_write(session)
    await _require_segments(session, org_id=org_id, segment_ids=segment_ids)
    broadcast = Broadcast(
        org_id=org_id,
        campaign_id=None,
        name=name,
        status=S.DRAFT,
        audience={"list_ids": [], "segment_ids": segment_ids, "send_to_all": send_to_all},
        scheduled_at=scheduled_at,
        is_test=is_test,
    )
    if campaign_id is not None:
        await _attachable(session, org_id=org_id, campaign_id=campaign_id)
        _schedule(broadcast, campaign_id=campaign_id, now=now)
    session.add(broadcast)
    await session.commit()
    return broadcast


async def attach_campaign(
    session: AsyncSession,
    *,
    org_id: int,
    broadcast_id: int,
    campaign_id: int,
    now: datetime | None = None,
) -> Broadcast:
    """Attach the campaign a DRAFT sends, and schedule it (see `create_for_audience`).

    Attaching the campaign a started or scheduled broadcast already has changes nothing;
    another campaign is a Conflict: what is sent is fixed once the draft is left.
    """
    now = now or utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.status != S.DRAFT:
        if broadcast.campaign_id == campaign_id:
            await session.commit()  # nothing changed; commit keeps `broadcast` loaded
            return broadcast
        raise Conflict(f"a {broadcast.status} broadcast's campaign cannot be changed")
    await _attachable(session, org_id=org_id, campaign_id=campaign_id)
    _schedule(broadcast, campaign_id=campaign_id, now=now)
    await session.commit()
    return broadcast


async def pause(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued messages are held; those already with a worker finish normally."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.PAUSED)
    await _move_messages(
        session, broadcast_id=broadcast.id, source="queued", target="held", now=now
    )
    await session.commit()
    return broadcast


async def resume(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Back to SENDING if it had started (held messages queued again), else SCHEDULED."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    target = S.SENDING if broadcast.started_at is not None else S.SCHEDULED
    broadcast.status = transition(S(broadcast.status), target)
    if target is S.SENDING:  # before the start, explicit recipients wait for start_due
        await _move_messages(
            session, broadcast_id=broadcast.id, source="held", target="queued", now=now
        )
    await session.commit()
    return broadcast


async def cancel(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued and held messages become cancelled; those with a worker finish normally."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.CANCELLED)
    broadcast.completed_at = now
    await release_messages(
        session,
        org_id=org_id,
        where=(MESSAGES.c.broadcast_id == broadcast.id) & MESSAGES.c.status.in_(["queued", "held"]),
        reference=f"broadcast:{broadcast.id}",
        note="broadcast cancelled",
    )
    for source in ("queued", "held"):
        await _move_messages(
            session, broadcast_id=broadcast.id, source=source, target="cancelled", now=now
        )
    await session.commit()
    return broadcast


async def start_due(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """Expand a due SCHEDULED broadcast, reserve its cost and set it SENDING, in one
    transaction.

    False when it is no longer due (paused, cancelled, or started by another worker
    meanwhile): the status is read again inside the write transaction. When the org's
    credit cannot cover the expanded messages, nothing is queued: the broadcast becomes
    FAILED ("insufficient credit") and its held explicit recipients are cancelled.
    """
    await begin_write(session)
    broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if (
        broadcast is None
        or broadcast.status != S.SCHEDULED
        or (broadcast.scheduled_at is not None and broadcast.scheduled_at > now)
        or broadcast.campaign_id is None  # never SCHEDULED without one; kept out regardless
    ):
        await session.rollback()
        return False
    campaign = await get_campaign(
        session, org_id=broadcast.org_id, campaign_id=broadcast.campaign_id
    )
    org = await get_org(session, org_id=broadcast.org_id)
    counts = await expand(
        session,
        broadcast=broadcast,
        campaign=campaign,
        sms_countries=org.sms_countries,
        now=now,
    )
    try:  # before the held ones are queued: those were reserved when the broadcast was made
        await charge_messages(
            session,
            org_id=broadcast.org_id,
            channel=campaign.channel,
            where=(MESSAGES.c.broadcast_id == broadcast.id) & (MESSAGES.c.status == "queued"),
            reference=f"broadcast:{broadcast.id}",
        )
    except InsufficientCredit:
        await session.rollback()
        return await _fail_for_credit(session, broadcast_id=broadcast_id, now=now)
    await _move_messages(  # explicit recipients, held since the broadcast was created
        session, broadcast_id=broadcast.id, source="held", target="queued", now=now
    )
    broadcast.status = transition(S.SCHEDULED, S.SENDING)
    broadcast.started_at = now
    broadcast.contacts_count = counts.contacts
    broadcast.recipients_count = counts.recipients
    broadcast.skipped_count = counts.skipped
    await session.commit()
    return True


async def _fail_for_credit(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """SCHEDULED → FAILED, its held messages cancelled and their reservation released."""
    await begin_write(session)
    broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or broadcast.status != S.SCHEDULED:
        await session.rollback()
        return False
    broadcast.status = transition(S.SCHEDULED, S.FAILED)
    broadcast.error_message = "insufficient credit"
    broadcast.completed_at = now
    await release_messages(
        session,
        org_id=broadcast.org_id,
        where=(MESSAGES.c.broadcast_id == broadcast.id) & (MESSAGES.c.status == "held"),
        reference=f"broadcast:{broadcast.id}",
        note="broadcast failed: insufficient credit",
    )
    await session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.broadcast_id == broadcast.id, MESSAGES.c.status == "held")
        .values(status="cancelled", reason="insufficient credit", finished_at=now)
    )
    await session.commit()
    return True
