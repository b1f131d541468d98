"""Invites: people asked to a campaign's target (a survey, a chat), each with their own link.

    recipients' variables ──▶ contact rows (email/phone, names; the rest → attributes)
                          ──▶ one broadcast with explicit recipients, now or at send_at
                              (upserted contacts join the campaign's recipient list)
                          ──▶ the dispatcher renders `{{ invite_link }}`: a signed /l/ link,
                              per message, to the campaign's `invite_url`

A recipient without the address the campaign's channel needs is skipped with a reason, by
index; it never fails the others. Every recipient is either accepted or skipped, once:
a recipient with several problems is one skipped entry, and one whose address an
earlier recipient of the request has is skipped as its duplicate. When none is accepted,
nothing is made (the contacts, the recipient list and the broadcast are undone together).

Variables keep any name. Those that are attribute names (`contacts.normalize`) are stored
on the contact as attributes too; every one is the message's own variable, read by the
template as `{{ store }}` or, for a name that is not an identifier, `{{ vars["Store
Name"] }}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.service import create_broadcast
from tidings.campaigns.models import Campaign
from tidings.campaigns.service import ensure_recipient_list, get_campaign
from tidings.campaigns.versions import freeze
from tidings.contacts.normalize import ATTRIBUTE_NAME, normalize_email, normalize_phone
from tidings.contacts.service import get_contact, upsert_contacts
from tidings.content import sms
from tidings.credits.service import charge_messages
from tidings.db.base import utcnow
from tidings.errors import FieldError, InvalidInput
from tidings.links.service import INVITE_POSITION, click_url
from tidings.links.tokens import TokenSigner
from tidings.orgs.service import get_org
from tidings.outbox import create as outbox
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

FIRST_NAME_KEYS = ("first_name", "firstName", "firstname")
LAST_NAME_KEYS = ("last_name", "lastName", "lastname")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A recipient not invited: its index in the request, and every reason
    (`field: reason`, joined by `; `)."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class InviteBatch:
    """`broadcast_id` is None when no recipient could be invited (then nothing was made).
    `accepted + len(skipped)` is the number of recipients, each skipped one listed once."""

    broadcast_id: int | None
    accepted: int
    skipped: list[Skipped]


def contact_row(channel: str, variables: Mapping[str, Any] | None) -> dict[str, Any] | str:
    """The contact row (with its `variables`) for one invitee, or why it cannot be invited."""
    variables = dict(variables or {})
    needed = "email" if channel == "email" else "phone"
    address = variables.get(needed)
    if isinstance(address, int) and not isinstance(address, bool):
        address = str(address)
    if not isinstance(address, str) or not address.strip():
        return f"variables.{needed} is required for an {channel} campaign"
    row: dict[str, Any] = {needed: address}
    attributes = {}
    for name, value in variables.items():
        if name in ("email", "phone"):
            continue
        if name in FIRST_NAME_KEYS and isinstance(value, str):
            row["first_name"] = value
        elif name in LAST_NAME_KEYS and isinstance(value, str):
            row["last_name"] = value
        elif ATTRIBUTE_NAME.match(name):  # the others are the message's variables only
            attributes[name] = value
    if attributes:
        row["attributes"] = attributes
    row["variables"] = variables
    return row


async def send_invites(
    session: AsyncSession,
    *,
    org_id: int,
    campaign_id: int,
    recipients: Sequence[Mapping[str, Any] | None],
    send_at: datetime | None,
    is_test: bool = False,
    now: datetime | None = None,
) -> InviteBatch:
    """Invite `recipients` under the campaign (query helper: the caller's one write
    transaction holds the contacts, the recipient list and the broadcast)."""
    now = now or utcnow()
    campaign = await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    region = (await get_org(session, org_id=org_id)).phone_region
    channel, name = campaign.channel, _batch_name(campaign, now)
    rows: list[dict[str, Any]] = []
    positions: list[int] = []  # rows[i] is recipients[positions[i]]
    reasons: dict[int, list[str]] = {}  # a skipped recipient's index → why
    first_with: dict[str, int] = {}  # an address → the first recipient that has it
    for index, variables in enumerate(recipients):
        row = contact_row(channel, variables)
        if isinstance(row, str):
            reasons[index] = [f"recipients[{index}].variables: {row}"]
            continue
        address = _address(channel, row, region)
        if address is not None and address in first_with:
            reasons[index] = [
                f"recipients[{index}]: duplicate of recipients[{first_with[address]}]"
            ]
            continue
        if address is not None:
            first_with[address] = index
        rows.append(row)
        positions.append(index)
    broadcast_id = None
    if rows:
        async with session.begin_nested() as made:
            list_id = await ensure_recipient_list(session, org_id=org_id, campaign_id=campaign_id)
            created = await create_broadcast(
                session,
                org_id=org_id,
                body=BroadcastCreate(
                    name=name,
                    campaign_id=campaign_id,
                    recipients=rows,
                    scheduled_at=send_at if send_at is not None and send_at > now else None,
                ),
                is_test=is_test,
                now=now,
                remember_in=list_id,
            )
            for error in [*created.rejected, *created.skipped]:
                index = positions[error.index or 0]
                field = error.field.replace(f"recipients[{error.index}]", f"recipients[{index}]", 1)
                reasons.setdefault(index, []).append(f"{field}: {error.reason}")
            if len(reasons) < len(recipients):
                broadcast_id = created.broadcast.id
            else:  # nobody to invite: no broadcast, no list, no contact stays
                await made.rollback()
    skipped = [Skipped(index, "; ".join(reasons[index])) for index in sorted(reasons)]
    return InviteBatch(broadcast_id, len(recipients) - len(skipped), skipped)


def _address(channel: str, row: Mapping[str, Any], region: str | None) -> str | None:
    """The row's address as stored (what makes two recipients one), or None when it is
    not valid (the upsert reports why)."""
    try:
        if channel == "email":
            return normalize_email(row["email"].strip())
        return normalize_phone(row["phone"], region)
    except ValueError:
        return None


def _batch_name(campaign: Campaign, now: datetime) -> str:
    return f"Invites: {campaign.name} ({now:%Y-%m-%d %H:%M:%S})"[:255]


@dataclass(frozen=True, slots=True)
class LinkInvite:
    message: Message
    segments: int  # of the text as it will be sent, the recipient's link in place


def international(to: str) -> str:
    """ "41793026727", "+41 79 302 67 27" or "0041793026727" → "+41793026727"; the number
    is checked when its contact is stored. Raises InvalidInput naming `to`."""
    digits = re.sub(r"[\s.()-]", "", to)
    digits = digits.removeprefix("+") if digits.startswith("+") else digits
    digits = digits.removeprefix("00") if digits.startswith("00") else digits
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise InvalidInput.field("to", "a phone number in international format, e.g. 41793026727")
    return f"+{digits}"


async def send_link_invite(
    session: AsyncSession,
    *,
    org_id: int,
    campaign_id: int,
    to: str,
    text: str,
    placeholder: str,
    signer: TokenSigner,
    public_url: str,
    is_test: bool = False,
) -> LinkInvite:
    """One SMS under an integration's campaign, every `placeholder` in `text` replaced by
    the recipient's invite link (to the campaign's `invite_url`, the integration's target).
    Query helper: the caller owns the write transaction."""
    phone = international(to)
    # Frozen before the contact is written, as every send does (`messages.send_single`).
    campaign = await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    version = await freeze(session, campaign=campaign)
    report = await upsert_contacts(session, org_id=org_id, rows=[{"phone": phone}])
    if report.errors:
        raise InvalidInput([FieldError("to", e.reason) for e in report.errors])
    contact_id = report.outcomes[0].contact_id
    assert contact_id is not None
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    org = await get_org(session, org_id=org_id)
    parts = text.split(placeholder)
    message = await outbox.add_one(
        session,
        batch=outbox.Batch(org_id, None, version, is_test, utcnow()),
        contact=contact,
        variables={"parts": parts},  # INVITE_TEXT joins them around the link
        sms_countries=org.sms_countries,
    )
    link = click_url(signer, public_url, message.id, INVITE_POSITION)
    segments = sms.shape(link.join(parts)).segments
    if message.status == MessageStatus.QUEUED:
        # Rendered already, so reserved for its real segments (402: not queued).
        await charge_messages(
            session,
            org_id=org_id,
            channel="sms",
            where=Message.id == message.id,
            reference=f"message:{message.id}",
            segments=segments,
        )
    return LinkInvite(message, segments)
