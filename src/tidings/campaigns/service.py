"""Campaigns: what is sent (template, channel), from whom, and why (purpose).

A single send that names a template or gives inline content instead of a campaign goes
out under a hidden campaign (`single_send_campaign`): one per distinct template, sender,
purpose and connection in the org, so every message has a campaign and the dispatcher
has one way to render and route it.

A campaign can be changed and deleted (hidden, kept as history) at any time: the sends
already accepted froze it (`campaigns.versions`), so they go on as they were.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.fields import id_in
from tidings.campaigns.models import Campaign
from tidings.campaigns.schemas import CampaignChanges, CampaignCreate
from tidings.connections.models import Connection
from tidings.connections.service import default_connections
from tidings.contacts.normalize import normalize_email
from tidings.content.footer import LANGUAGES
from tidings.content.render import Renderer, TemplateError
from tidings.db.base import utcnow
from tidings.db.names import (
    digest_name,
    find_or_add_named,
    free_name,
    require_free_name,
    unique_name,
)
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.lists.models import ContactList
from tidings.templates.models import Template
from tidings.templates.service import LIVE as LIVE_TEMPLATE
from tidings.templates.service import PUBLIC as PUBLIC_TEMPLATE
from tidings.templates.service import get_template

SMS_SENDER = re.compile(r"^([A-Za-z0-9 ._-]{1,11}|\+?[0-9]{1,15})$")
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_HTTP_URL = re.compile(r"^https?://\S", re.I)
LIVE = Campaign.deleted_at.is_(None)
# What the org may name: its own campaigns. A single send's hidden campaign is Tidings'
# own, so, like another org's campaign, it is neither listed nor found by id.
PUBLIC = Campaign.is_single_send.is_(False)


async def _check(
    session: AsyncSession,
    *,
    org_id: int,
    body: CampaignCreate,
    campaign_id: int = 0,
    single_send: bool = False,
) -> list[FieldError]:
    """Every rule of a campaign's fields that needs more than its own field: what it names
    exists in the org (and is not deleted), fits its channel, and so on. `campaign_id`:
    the campaign being changed, which may keep its own `external_id`. `single_send`: a
    hidden campaign, which may send an inline template; the org's own may not."""
    errors: list[FieldError] = []
    template = await session.scalar(
        select(Template).where(
            Template.org_id == org_id,
            Template.id == body.template_id,
            LIVE_TEMPLATE if single_send else PUBLIC_TEMPLATE,
        )
    )
    if template is None:
        errors.append(FieldError("template_id", f"template {body.template_id} does not exist"))
    elif template.channel != body.channel:
        errors.append(FieldError("template_id", f"is a {template.channel} template"))
    named = [("connection_id", body.connection_id)] if body.connection_id is not None else []
    named += [(f"connection_ids[{i}]", c) for i, c in enumerate(body.connection_ids or ())]
    if named:
        rows = await session.scalars(
            select(Connection).where(
                Connection.org_id == org_id,
                Connection.id.in_({c for _, c in named}),
                Connection.deleted_at.is_(None),
            )
        )
        found = {row.id: row for row in rows}
        for field, connection_id in named:
            connection = found.get(connection_id)
            if connection is None:
                errors.append(FieldError(field, "does not exist"))
            elif connection.channel != body.channel:
                errors.append(FieldError(field, f"is a {connection.channel} connection"))
    if body.fallback_campaign_id is not None:
        fallback = await session.scalar(
            select(Campaign).where(
                Campaign.org_id == org_id, Campaign.id == body.fallback_campaign_id, LIVE, PUBLIC
            )
        )
        if fallback is None or fallback.id == campaign_id:
            errors.append(FieldError("fallback_campaign_id", "does not exist"))
        elif fallback.channel == body.channel:
            errors.append(
                FieldError("fallback_campaign_id", f"is on the {fallback.channel} channel too")
            )
    if body.list_id is not None:
        found = await session.scalar(
            select(ContactList.id).where(
                ContactList.org_id == org_id, ContactList.id == body.list_id
            )
        )
        if found is None:
            errors.append(FieldError("list_id", "does not exist"))
    if body.channel == "email":
        if not body.from_email:
            errors.append(FieldError("from_email", "an email campaign needs a sender address"))
        for name in ("from_email", "reply_to"):
            value = getattr(body, name)
            if value:
                try:
                    normalize_email(value)
                except ValueError as exc:
                    errors.append(FieldError(name, str(exc)))
        if body.from_name and _HEADER_UNSAFE.search(body.from_name):
            errors.append(FieldError("from_name", "must not contain CR, LF or NUL"))
    elif body.sms_sender and not SMS_SENDER.match(body.sms_sender):
        errors.append(FieldError("sms_sender", "up to 11 letters/digits, or up to 15 digits"))
    if body.language is not None and body.language not in LANGUAGES:
        errors.append(FieldError("language", f"one of {', '.join(sorted(LANGUAGES))}"))
    if body.invite_url is not None:
        errors += _check_invite_url(body.invite_url)
    if body.external_id is not None:
        taken = await session.scalar(
            select(Campaign.id).where(
                Campaign.org_id == org_id,
                Campaign.external_id == body.external_id,
                Campaign.id != campaign_id,
                LIVE,
            )
        )
        if taken is not None:
            errors.append(FieldError("external_id", f"campaign {taken} has it"))
    return errors


def _routed(body: CampaignCreate) -> tuple[CampaignCreate, list[FieldError]]:
    """`body` with its connections in the stored shape: `connection_id` the first of
    `connection_ids`, and `connection_ids` kept only when it names more than one; or
    `body` as it is, with the errors: both given and disagreeing, a connection listed
    twice."""
    ids = body.connection_ids
    if ids is None:
        return body, []
    errors = [
        FieldError(f"connection_ids[{i}]", "listed twice")
        for i, c in enumerate(ids)
        if c in ids[:i]
    ]
    if ids and body.connection_id is not None and body.connection_id != ids[0]:
        errors.append(FieldError("connection_id", "must be connection_ids[0] when both are given"))
    if errors:
        return body, errors
    first = ids[0] if ids else body.connection_id
    routed = {"connection_id": first, "connection_ids": list(ids) if len(ids) > 1 else None}
    return body.model_copy(update=routed), []


def _check_invite_url(url: str) -> list[FieldError]:
    if not _HTTP_URL.match(url):
        return [FieldError("invite_url", "an http:// or https:// URL")]
    try:
        Renderer().compile(url, field="invite_url", html=False)
    except TemplateError as exc:
        return [FieldError("invite_url", str(exc))]
    return []


async def create_campaign(session: AsyncSession, *, org_id: int, body: CampaignCreate) -> Campaign:
    body, errors = _routed(body)
    errors += await _check(session, org_id=org_id, body=body)
    if errors:
        raise InvalidInput(errors)
    await require_free_name(
        session, Campaign, org_id=org_id, name=body.name, what="campaign", where=LIVE
    )
    campaign = Campaign(org_id=org_id, **body.model_dump())
    async with unique_name(session, name=body.name, what="campaign"):
        session.add(campaign)
    return campaign


async def update_campaign(
    session: AsyncSession, *, org_id: int, campaign_id: int, changes: CampaignChanges
) -> Campaign:
    """Change the campaign's fields, checked as a new campaign's are (the result as a
    whole: a new template must fit the channel, an email campaign keeps a sender, …)."""
    campaign = await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    current = {name: getattr(campaign, name) for name in CampaignCreate.model_fields}
    # One of the two connection fields changed: the other follows it.
    if "connection_id" in changes and "connection_ids" not in changes:
        current["connection_ids"] = None
    if "connection_ids" in changes and "connection_id" not in changes:
        current["connection_id"] = None
    body, errors = _routed(CampaignCreate.model_validate({**current, **changes}))
    errors += await _check(session, org_id=org_id, body=body, campaign_id=campaign_id)
    if errors:
        raise InvalidInput(errors)
    if "name" in changes:
        await require_free_name(
            session,
            Campaign,
            org_id=org_id,
            name=body.name,
            what="campaign",
            except_id=campaign_id,
            where=LIVE,
        )
    async with unique_name(session, name=body.name, what="campaign"):
        for name, value in body.model_dump().items():
            setattr(campaign, name, value)
    return campaign


def mark_deleted(campaign: Campaign) -> None:
    """Hide the campaign (its name and external id free again), kept as history; the
    caller has checked nothing in flight uses it (`retirement`)."""
    campaign.deleted_at = utcnow()


async def get_campaign(session: AsyncSession, *, org_id: int, campaign_id: int) -> Campaign:
    """The org's campaign, unless deleted or hidden (NotFound)."""
    return await get_owned(
        session, Campaign, org_id=org_id, ident=campaign_id, what="campaign", where=LIVE & PUBLIC
    )


async def list_campaigns(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool = False,
) -> list[Campaign]:
    page = owned_page(
        Campaign, org_id=org_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    return list(await session.scalars(page.where(PUBLIC, LIVE)))


async def single_send_campaign(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    template_id: int,
    purpose: str,
    from_name: str | None,
    from_email: str | None,
    reply_to: str | None,
    sms_sender: str | None,
    connection_id: int | None,
    connection_ids: list[int] | None = None,
) -> Campaign:
    """The hidden campaign for single sends with this template, sender, purpose and
    connections, added if there is none (query helper: the caller owns the transaction).
    The fields are checked as a campaign's are: InvalidInput names `from_email`,
    `connection_id`, `connection_ids[1]`, …"""
    if connection_ids is not None:
        routed, errors = _routed(
            CampaignCreate.model_validate({
                "name": "-", "channel": channel, "template_id": template_id,
                "connection_id": connection_id, "connection_ids": connection_ids,
            })
        )  # fmt: skip
        if errors:
            raise InvalidInput(errors)
        connection_id, connection_ids = routed.connection_id, routed.connection_ids
    spec: dict[str, Any] = {
        "channel": channel,
        "template_id": template_id,
        "purpose": purpose,
        "from_name": from_name,
        "from_email": from_email,
        "reply_to": reply_to,
        "sms_sender": sms_sender,
        "connection_id": connection_id,
    }
    if connection_ids is not None:  # only then: the names of those without stay as they were
        spec["connection_ids"] = connection_ids
    name = digest_name("single send", spec)
    errors = await _check(
        session,
        org_id=org_id,
        body=CampaignCreate.model_validate(spec | {"name": name}),
        single_send=True,
    )
    if errors:
        raise InvalidInput(errors)
    campaign: Campaign = await find_or_add_named(
        session, Campaign, org_id=org_id, name=name, values={**spec, "is_single_send": True}
    )
    if not campaign.is_single_send:  # a campaign of the org's own was given this very name
        raise InvalidInput.field("body", f"the org's campaign {campaign.id} is named {name!r}")
    return campaign


async def template_campaign(
    session: AsyncSession,
    *,
    org_id: int,
    template_id: int,
    purpose: str,
    from_name: str | None,
    from_email: str | None,
    sms_sender: str | None,
) -> Campaign:
    """The hidden campaign a broadcast of a bare template goes out under (the console's
    compose): the one a single send of this template and sender gets
    (`single_send_campaign`), through the org's default connection for the template's
    channel. InvalidInput on `template_id` for an unknown template or when the org has no
    default connection for its channel (the built-in sink would get the send); on
    `from_email`, … as a campaign's fields. Query helper: the caller's write transaction."""
    try:
        template = await get_template(session, org_id=org_id, template_id=template_id)
    except NotFound as exc:
        raise InvalidInput.field("template_id", exc.detail) from None
    if template.channel not in await default_connections(session, org_id=org_id):
        raise InvalidInput.field(
            "template_id",
            f"the org has no default {template.channel} connection to send a template through:"
            " mark one as the default on the connections page, or choose a campaign",
        )
    return await single_send_campaign(
        session, org_id=org_id, channel=template.channel, template_id=template.id,
        purpose=purpose, from_name=from_name, from_email=from_email, reply_to=None,
        sms_sender=sms_sender, connection_id=None,
    )  # fmt: skip


async def find_campaign(
    session: AsyncSession, *, org_id: int, reference: str, project_ref: str, survey_ref: str
) -> Campaign:
    """The org's campaign named `reference` (its external id, else its id) that belongs to
    the project and survey; NotFound otherwise, whichever part does not match."""
    query = select(Campaign).where(Campaign.org_id == org_id, LIVE, PUBLIC)
    found = await session.scalar(query.where(Campaign.external_id == reference))
    campaign_id = id_in(reference)
    if found is None and campaign_id is not None:
        found = await session.scalar(query.where(Campaign.id == campaign_id))
    if found is None or (found.project_ref, found.survey_ref) != (project_ref, survey_ref):
        raise NotFound("campaign", reference)
    return found


async def ensure_recipient_list(session: AsyncSession, *, org_id: int, campaign_id: int) -> int:
    """The campaign's recipient list, created (and attached) on first use (query helper:
    the caller's write transaction).

    Concurrent first uses make one list: the campaign row is locked (PostgreSQL; SQLite
    writers queue) and its list read again before one is made."""
    campaign = await get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    if campaign.list_id is not None:
        return campaign.list_id
    locked = await session.scalar(
        select(Campaign)
        .where(Campaign.org_id == org_id, Campaign.id == campaign_id, LIVE)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise NotFound("campaign", campaign_id)
    if locked.list_id is not None:
        return locked.list_id
    name = await free_name(session, ContactList, org_id=org_id, base=f"{locked.name} recipients")
    recipients = ContactList(org_id=org_id, name=name)
    session.add(recipients)
    await session.flush()
    locked.list_id = recipients.id
    await session.flush()
    return recipients.id
