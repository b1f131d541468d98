"""Broadcasts: create, read, pause, resume, cancel; and `start_due`, which the dispatcher
calls to expand a due broadcast and set it SENDING. Their messages are the outbox's
(`tidings.outbox`: created by `outbox.create`, moved by `outbox.moves`). Query helpers in
the caller's transaction: none of these commits.

"Send now" is a broadcast scheduled for now: the dispatcher expands it on its next tick
(about a second), so creating a broadcast of a million recipients answers at once.

What a broadcast sends is frozen when it is accepted — created, or, for a draft, sent or
given its campaign: `campaign_version_id` (`campaigns.versions.freeze`), which its
messages are made with whenever it starts, so a later change of the campaign or its
template never reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts import estimate as estimates
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.status import BroadcastStatus, transition
from tidings.campaigns.models import Campaign, CampaignVersion
from tidings.campaigns.service import get_campaign
from tidings.campaigns.versions import freeze
from tidings.contacts.normalize import MAX_ATTRIBUTES_BYTES, too_large
from tidings.contacts.service import upsert_contacts
from tidings.credits.service import (
    INSUFFICIENT_CREDIT,
    charge_messages,
    is_free,
    price_table,
    release,
)
from tidings.db.base import utcnow
from tidings.db.owned import get_owned, owned_page
from tidings.errors import Conflict, FieldError, InsufficientCredit, InvalidInput, NotFound
from tidings.lists.service import add_to_list, require_lists
from tidings.orgs.service import get_org
from tidings.outbox import create as outbox
from tidings.outbox.audience import audience_condition
from tidings.outbox.fallback import expand as fallbacks_made
from tidings.outbox.fallback import merged
from tidings.outbox.models import Message
from tidings.outbox.moves import fallbacks_of, move, of_broadcast
from tidings.outbox.status import MessageStatus
from tidings.outbox.timing import send_timing
from tidings.segments.models import Segment

S = BroadcastStatus
MS = MessageStatus


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
    """Upsert the rows; the contacts accepted, and the rejects."""
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


async def _require_segments(session: AsyncSession, *, org_id: int, segment_ids: list[int]) -> None:
    """InvalidInput naming each id that is not one of the org's segments, by its index."""
    if not segment_ids:
        return
    found = set(
        await session.scalars(
            select(Segment.id).where(Segment.org_id == org_id, Segment.id.in_(segment_ids))
        )
    )
    InvalidInput.unless_known("segment_ids", "segment", segment_ids, found)


async def create_broadcast(
    session: AsyncSession,
    *,
    org_id: int,
    body: BroadcastCreate,
    is_test: bool = False,
    now: datetime | None = None,
    remember_in: int | None = None,
    charge: bool = True,
    campaign: Campaign | None = None,
) -> Created:
    """`remember_in`: a list the explicit recipients join (a campaign's recipient list).
    `campaign`: the campaign `body.campaign_id` names, found by the caller: a template's
    hidden campaign (`campaigns.service.template_campaign`), which no id given finds.
    Unless a draft, refused up front (InsufficientCredit, 402) when the balance cannot
    cover what it would send (`estimate`); `charge=False` (a dry run, rolled back by its
    caller) reserves nothing and refuses nothing. Query helper: the caller owns the
    (write) transaction."""
    now = now or utcnow()
    if body.local_date is not None and body.local_time is None:
        raise InvalidInput.field("local_date", "a date for local_time: give local_time too")
    # A 404 for an unknown campaign before any contact is upserted for it.
    if campaign is None or campaign.id != body.campaign_id:
        campaign = await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    version = await freeze(session, campaign=campaign)  # a draft's is frozen again when sent
    recipients = _Accepted({}, {})
    rejected: list[FieldError] = []
    if body.recipients:
        recipients, rejected = await _explicit_recipients(
            session,
            org_id=org_id,
            rows=[dict(r) if isinstance(r, dict) else r for r in body.recipients],
        )
    await require_lists(session, org_id=org_id, list_ids=body.list_ids)
    await _require_segments(session, org_id=org_id, segment_ids=body.segment_ids)
    broadcast = Broadcast(
        org_id=org_id,
        campaign_id=body.campaign_id,
        campaign_version_id=version.id,
        name=body.name,
        status=S.DRAFT if body.draft else S.SCHEDULED,
        audience={
            "list_ids": body.list_ids,
            "segment_ids": body.segment_ids,
            "send_to_all": body.send_to_all,
            "recipients": len(recipients.variables),
        },
        scheduled_at=None if body.draft else (body.scheduled_at or now),
        local_time=body.local_time,
        local_date=body.local_date.isoformat() if body.local_date else None,
        is_test=is_test,
    )
    session.add(broadcast)
    await session.flush()
    skips: dict[int, str] = {}
    if recipients.variables:
        org = await get_org(session, org_id=org_id)
        timing, org_zone = send_timing(
            org, version, local_time=broadcast.local_time, local_date=broadcast.local_date
        )
        skips = await outbox.hold(
            session,
            batch=outbox.Batch(org_id, broadcast.id, version, is_test, now, timing, org_zone),
            recipients=recipients.variables,
            sms_countries=org.sms_countries,
            due_at=broadcast.scheduled_at,
        )
        # Reserved now: the send is accepted (402 queues nothing).
        if charge:
            await charge_messages(
                session,
                org_id=org_id,
                channel=version.channel,
                where=of_broadcast(broadcast.id, MS.HELD),
                reference=f"broadcast:{broadcast.id}",
            )
        if remember_in is not None:
            await add_to_list(
                session, org_id=org_id, list_id=remember_in, contact_ids=list(recipients.variables)
            )
    if charge and not body.draft:
        await _require_covered(session, broadcast=broadcast, version=version, now=now)
    skipped = [
        FieldError(f"recipients[{i}]", reason, i)
        for contact_id, reason in skips.items()
        for i in [recipients.index[contact_id]]
    ]
    return Created(broadcast, rejected, sorted(skipped, key=lambda e: e.index or 0))


async def _require_covered(
    session: AsyncSession, *, broadcast: Broadcast, version: CampaignVersion, now: datetime
) -> None:
    """InsufficientCredit (402) with the estimate's figures when the balance cannot cover
    the broadcast. Free (no price for the channel) and test-key sends skip the estimate:
    a million-recipient send to a free org is accepted at once."""
    if broadcast.is_test:
        return
    channels = {version.channel}
    if version.fallback_version_id is not None:  # the other one
        channels = {"email", "sms"}
    tables = [await price_table(session, org_id=broadcast.org_id, channel=c) for c in channels]
    if all(is_free(table) for table in tables):
        return
    figures = await estimates.estimate(session, broadcast=broadcast, now=now, version=version)
    estimates.require_covered(figures)


async def get_broadcast(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    return await get_owned(session, Broadcast, org_id=org_id, ident=broadcast_id, what="broadcast")


async def list_broadcasts(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool = False,
) -> list[Broadcast]:
    page = owned_page(
        Broadcast, org_id=org_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    return list(await session.scalars(page))


async def active_broadcasts(
    session: AsyncSession, *, org_id: int, limit: int = 20
) -> list[Broadcast]:
    """The org's broadcasts sending, paused or scheduled: the next due first."""
    live = [S.SENDING.value, S.PAUSED.value, S.SCHEDULED.value]
    query = (
        select(Broadcast)
        .where(Broadcast.org_id == org_id, Broadcast.status.in_(live))
        .order_by(Broadcast.scheduled_at, Broadcast.id)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def send_draft(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """DRAFT → SCHEDULED for now (its own scheduled_at if that is still ahead)."""
    now = utcnow()
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.campaign_id is None:
        raise Conflict("attach a template (a campaign) to this draft before sending it")
    if broadcast.status == S.DRAFT:
        campaign = await session.get(Campaign, broadcast.campaign_id)
        assert campaign is not None  # campaigns are never removed, only marked deleted
        await _schedule(session, broadcast, campaign=campaign, now=now)
    else:
        broadcast.status = transition(S(broadcast.status), S.SCHEDULED)  # the 409 it gives
    return broadcast


async def _schedule(
    session: AsyncSession, broadcast: Broadcast, *, campaign: Campaign, now: datetime
) -> None:
    """Attach the campaign as it is now (frozen: its held messages too) and schedule the
    broadcast, at its own time if still ahead, else now. Every way a draft is scheduled
    comes here (`send_draft`, and seed 002's create and attach), so each is refused up
    front alike (InsufficientCredit, 402) when the balance cannot cover the send."""
    version = await freeze(session, campaign=campaign)
    broadcast.status = transition(S(broadcast.status), S.SCHEDULED)
    broadcast.campaign_id = campaign.id
    if broadcast.campaign_version_id != version.id:
        broadcast.campaign_version_id = version.id
        await session.execute(
            update(Message)
            .where(Message.broadcast_id == broadcast.id, Message.status == MS.HELD)
            .values(campaign_version_id=version.id)
        )
    if broadcast.scheduled_at is None or broadcast.scheduled_at < now:
        broadcast.scheduled_at = now
    await _require_covered(session, broadcast=broadcast, version=version, now=now)


async def _attachable(session: AsyncSession, *, org_id: int, campaign_id: int) -> Campaign:
    # Named in the body, not the path: an unknown campaign is bad input, not a 404.
    try:
        return await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
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

    With a campaign it is SCHEDULED (at `scheduled_at`, or now when that is null or past),
    unless the balance cannot cover it: InsufficientCredit (402), nothing made. Without
    one it is a DRAFT that keeps `scheduled_at` until `attach_campaign`.
    """
    if not (segment_ids or send_to_all):
        raise InvalidInput.field("segment_ids", "choose an audience: segment_ids or send_to_all")
    now = now or utcnow()
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
    session.add(broadcast)
    await session.flush()
    if campaign_id is not None:
        campaign = await _attachable(session, org_id=org_id, campaign_id=campaign_id)
        await _schedule(session, broadcast, campaign=campaign, now=now)
    return broadcast


async def attach_campaign(
    session: AsyncSession,
    *,
    org_id: int,
    broadcast_id: int,
    campaign_id: int,
    now: datetime | None = None,
) -> Broadcast:
    """Attach the campaign a DRAFT sends, and schedule it (see `create_for_audience`;
    InsufficientCredit, 402, when the balance cannot cover it: it stays a DRAFT).

    Attaching the campaign a started or scheduled broadcast already has changes nothing;
    another campaign is a Conflict: what is sent is fixed once the draft is left.
    """
    now = now or utcnow()
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.status != S.DRAFT:
        if broadcast.campaign_id == campaign_id:
            return broadcast  # nothing changed
        raise Conflict(f"a {broadcast.status} broadcast's campaign cannot be changed")
    campaign = await _attachable(session, org_id=org_id, campaign_id=campaign_id)
    await _schedule(session, broadcast, campaign=campaign, now=now)
    return broadcast


async def pause(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued messages are held; those already with a worker finish normally."""
    now = utcnow()
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.PAUSED)
    await move(session, broadcast_id=broadcast.id, source=MS.QUEUED, target=MS.HELD, now=now)
    return broadcast


async def resume(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Back to SENDING if it had started (held messages queued again), else SCHEDULED."""
    now = utcnow()
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    target = S.SENDING if broadcast.started_at is not None else S.SCHEDULED
    broadcast.status = transition(S(broadcast.status), target)
    if target is S.SENDING:  # before the start, explicit recipients wait for start_due
        await move(session, broadcast_id=broadcast.id, source=MS.HELD, target=MS.QUEUED, now=now)
    return broadcast


async def cancel(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued and held messages become cancelled; those with a worker finish normally."""
    now = utcnow()
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.CANCELLED)
    broadcast.completed_at = now
    reserved = 0
    for source in (MS.QUEUED, MS.HELD):
        reserved += await move(
            session,
            broadcast_id=broadcast.id,
            source=source,
            target=MS.CANCELLED,
            now=now,
            reason="broadcast cancelled",
        )
    await release(
        session,
        org_id=org_id,
        amount=reserved,
        reference=f"broadcast:{broadcast.id}",
        note="broadcast cancelled",
    )
    return broadcast


async def due_broadcasts(session: AsyncSession, *, now: datetime, limit: int = 10) -> list[int]:
    """Scheduled broadcasts whose time has come, oldest first (read only)."""
    rows = await session.scalars(
        select(Broadcast.id)
        .where(Broadcast.status == S.SCHEDULED, Broadcast.scheduled_at <= now)
        .order_by(Broadcast.scheduled_at)
        .limit(limit)
    )
    return list(rows)


async def start_due(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """Expand a due SCHEDULED broadcast, reserve its cost and set it SENDING (a
    dispatcher step: the caller's write transaction holds it all).

    False when it is no longer due (paused, cancelled, or started by another worker
    meanwhile): the status is read again, the row locked, inside the transaction. When the
    org's credit cannot cover the expanded messages, the expansion is undone (a savepoint)
    and nothing is queued: the broadcast becomes FAILED ("insufficient credit") and its held
    explicit recipients are cancelled.
    """
    broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if (
        broadcast is None
        or broadcast.status != S.SCHEDULED
        or (broadcast.scheduled_at is not None and broadcast.scheduled_at > now)
        or broadcast.campaign_id is None  # never SCHEDULED without one; kept out regardless
    ):
        return False
    version = await frozen(session, broadcast=broadcast)
    org = await get_org(session, org_id=broadcast.org_id)
    audience = await audience_condition(
        session, org_id=broadcast.org_id, audience=broadcast.audience, broadcast_id=broadcast.id
    )
    timing, org_zone = send_timing(
        org, version, local_time=broadcast.local_time, local_date=broadcast.local_date
    )
    batch = outbox.Batch(
        broadcast.org_id, broadcast.id, version, broadcast.is_test, now, timing, org_zone
    )
    fallback = await fallback_batch(session, broadcast=broadcast, version=version, now=now)
    try:
        async with session.begin_nested():
            counts = await outbox.expand(
                session,
                batch=batch,
                audience=audience,
                sms_countries=org.sms_countries,
            )
            fallbacks = (
                await fallbacks_made(session, batch=fallback, sms_countries=org.sms_countries)
                if fallback is not None
                else None
            )
            # Before the held ones are queued: those were reserved when it was made.
            await charge_messages(
                session,
                org_id=broadcast.org_id,
                channel=version.channel,
                where=of_broadcast(broadcast.id, MS.QUEUED),
                reference=f"broadcast:{broadcast.id}",
            )
            if fallback is not None and fallbacks is not None and fallbacks.made:
                await charge_messages(
                    session,
                    org_id=broadcast.org_id,
                    channel=fallback.campaign.channel,
                    where=fallbacks_of(broadcast.id),
                    reference=f"broadcast:{broadcast.id}",
                )
    except InsufficientCredit:
        await _fail_for_credit(session, broadcast=broadcast, now=now)
        return True
    # Explicit recipients, held since the broadcast was created.
    await move(session, broadcast_id=broadcast.id, source=MS.HELD, target=MS.QUEUED, now=now)
    broadcast.status = transition(S.SCHEDULED, S.SENDING)
    broadcast.started_at = now
    broadcast.contacts_count = counts.contacts
    broadcast.recipients_count = counts.recipients
    broadcast.skipped_count = counts.skipped
    schedule = counts.schedule
    if fallbacks is not None and fallbacks.made:
        broadcast.fallback_count += fallbacks.made
        schedule = merged(schedule, fallbacks.schedule)
    broadcast.due_schedule = [[at.isoformat(), n] for at, n in schedule]
    return True


async def fallback_batch(
    session: AsyncSession, *, broadcast: Broadcast, version: CampaignVersion, now: datetime
) -> outbox.Batch | None:
    """The batch of the fallback messages of `broadcast` sent with `version`: its frozen
    fallback campaign, timed as that campaign's channel is (its quiet hours), the
    broadcast's local time; None without a fallback (read only)."""
    if version.fallback_version_id is None:
        return None
    fallback = await session.get(CampaignVersion, version.fallback_version_id)
    assert fallback is not None  # versions are never removed while their campaign is
    return await _fallback_batch(session, broadcast=broadcast, fallback=fallback, now=now)


async def _fallback_batch(
    session: AsyncSession, *, broadcast: Broadcast, fallback: CampaignVersion, now: datetime
) -> outbox.Batch:
    org = await get_org(session, org_id=broadcast.org_id)
    timing, org_zone = send_timing(
        org, fallback, local_time=broadcast.local_time, local_date=broadcast.local_date
    )
    return outbox.Batch(
        broadcast.org_id, broadcast.id, fallback, broadcast.is_test, now, timing, org_zone
    )


async def frozen(session: AsyncSession, *, broadcast: Broadcast) -> CampaignVersion:
    """The campaign as the broadcast froze it when it was accepted (every SCHEDULED
    broadcast has one: `_schedule`, and migration 0013 for older ones)."""
    assert broadcast.campaign_version_id is not None
    version = await session.get(CampaignVersion, broadcast.campaign_version_id)
    assert version is not None  # versions are never removed while their campaign is
    return version


async def _fail_for_credit(session: AsyncSession, *, broadcast: Broadcast, now: datetime) -> None:
    """SCHEDULED → FAILED, its held messages cancelled and their reservation released."""
    broadcast.status = transition(S.SCHEDULED, S.FAILED)
    broadcast.error_message = INSUFFICIENT_CREDIT
    broadcast.completed_at = now
    reserved = await move(
        session,
        broadcast_id=broadcast.id,
        source=MS.HELD,
        target=MS.CANCELLED,
        now=now,
        reason=INSUFFICIENT_CREDIT,
    )
    await release(
        session,
        org_id=broadcast.org_id,
        amount=reserved,
        reference=f"broadcast:{broadcast.id}",
        note="broadcast failed: insufficient credit",
    )
