"""Applications and their integrations: what seed 003's invite path names.

An application owns one SMS template, `INVITE_TEXT`: the invite request's text, split at
its link placeholder, joined again around the recipient's invite link. Each integration
has its own campaign (that template, the application's sender and connection, and the
integration's target as `invite_url`), so its invites are counted and listed natively.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.applications.models import Application, Integration
from tidings.applications.schemas import ApplicationCreate, IntegrationIn
from tidings.campaigns.models import Campaign
from tidings.campaigns.service import SMS_SENDER
from tidings.connections.models import Connection
from tidings.db.names import free_name
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.templates.models import Template
from tidings.templates.service import version_of

INVITE_TEXT = "{{ vars.parts | join(invite_link) }}"


@dataclass(frozen=True, slots=True)
class WithIntegrations:
    application: Application
    integrations: list[Integration]


async def _check(
    session: AsyncSession, *, org_id: int, body: ApplicationCreate
) -> list[FieldError]:
    errors: list[FieldError] = []
    if body.sms_sender and not SMS_SENDER.match(body.sms_sender):
        errors.append(FieldError("sms_sender", "up to 11 letters/digits, or up to 15 digits"))
    if body.connection_id is not None:
        channel = await session.scalar(
            select(Connection.channel).where(
                Connection.org_id == org_id,
                Connection.id == body.connection_id,
                Connection.deleted_at.is_(None),
            )
        )
        if channel is None:
            errors.append(FieldError("connection_id", "does not exist"))
        elif channel != "sms":
            errors.append(FieldError("connection_id", f"is an {channel} connection"))
    seen: set[str] = set()
    for index, integration in enumerate(body.integrations):
        if integration.type in seen:
            errors.append(FieldError(f"integrations[{index}].type", "named twice", index))
        seen.add(integration.type)
    return errors


async def create_application(
    session: AsyncSession, *, org_id: int, body: ApplicationCreate
) -> WithIntegrations:
    errors = await _check(session, org_id=org_id, body=body)
    taken = await session.scalar(
        select(Application.id).where(Application.org_id == org_id, Application.key == body.key)
    )
    if taken is not None:
        errors.append(FieldError("key", f"an application with key {body.key!r} exists"))
    if errors:
        raise InvalidInput(errors)
    template = Template(
        org_id=org_id,
        name=await free_name(session, Template, org_id=org_id, base=f"Application {body.key}"),
        channel="sms",
        text=INVITE_TEXT,
    )
    session.add(template)
    await session.flush()
    session.add(version_of(template, by=None))  # its one version: never changed
    application = Application(
        org_id=org_id,
        key=body.key,
        name=body.name,
        sms_sender=body.sms_sender,
        connection_id=body.connection_id,
        template_id=template.id,
    )
    try:
        async with session.begin_nested():
            session.add(application)
    except IntegrityError:  # a concurrent create with the same key
        raise InvalidInput.field("key", f"an application with key {body.key!r} exists") from None
    integrations = [await _integration(session, application, i) for i in body.integrations]
    return WithIntegrations(application, integrations)


async def _integration(
    session: AsyncSession, application: Application, body: IntegrationIn
) -> Integration:
    """A new integration of `application`, with its campaign (query helper: no commit)."""
    org_id = application.org_id
    base = f"Application {application.key} {body.type}"
    campaign = Campaign(
        org_id=org_id,
        name=await free_name(session, Campaign, org_id=org_id, base=base),
        channel="sms",
        template_id=application.template_id,
        purpose="transactional",
        sms_sender=application.sms_sender,
        connection_id=application.connection_id,
        invite_url=str(body.target_url),
    )
    session.add(campaign)
    await session.flush()
    integration = Integration(
        org_id=org_id,
        application_id=application.id,
        type=body.type,
        target_url=str(body.target_url),
        campaign_id=campaign.id,
    )
    session.add(integration)
    await session.flush()
    return integration


async def get_application(
    session: AsyncSession, *, org_id: int, application_id: int
) -> WithIntegrations:
    application = await get_owned(
        session, Application, org_id=org_id, ident=application_id, what="application"
    )
    return WithIntegrations(application, await _integrations_of(session, [application.id]))


async def list_applications(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[WithIntegrations]:
    rows = list(
        await session.scalars(
            owned_page(Application, org_id=org_id, after_id=after_id, limit=limit)
        )
    )
    integrations = await _integrations_of(session, [a.id for a in rows])
    return [
        WithIntegrations(a, [i for i in integrations if i.application_id == a.id]) for a in rows
    ]


async def _integrations_of(session: AsyncSession, ids: list[int]) -> list[Integration]:
    if not ids:
        return []
    query = (
        select(Integration)
        .where(Integration.application_id.in_(ids))
        .order_by(Integration.application_id, Integration.type)
    )
    return list(await session.scalars(query))


async def put_integration(
    session: AsyncSession, *, org_id: int, application_id: int, body: IntegrationIn
) -> Integration:
    """Create the application's integration of `body.type`, or change where it leads."""
    application = await get_owned(
        session, Application, org_id=org_id, ident=application_id, what="application"
    )
    integration = await session.scalar(
        select(Integration).where(
            Integration.application_id == application.id, Integration.type == body.type
        )
    )
    if integration is None:
        integration = await _integration(session, application, body)
    else:
        integration.target_url = str(body.target_url)
        campaign = await session.get(Campaign, integration.campaign_id)
        assert campaign is not None  # the foreign key
        campaign.invite_url = integration.target_url
        await session.flush()
    return integration


async def delete_application(session: AsyncSession, *, org_id: int, application_id: int) -> None:
    application = await get_owned(
        session, Application, org_id=org_id, ident=application_id, what="application"
    )
    await session.delete(application)
    await session.flush()


async def find_integration(
    session: AsyncSession, *, org_id: int, key: str, type_: str
) -> tuple[Application, Integration]:
    """The org's application with `key` and its integration of `type_` (case-insensitive),
    or NotFound."""
    application = await session.scalar(
        select(Application).where(Application.org_id == org_id, Application.key == key)
    )
    if application is None:
        raise NotFound("application", key)
    integration = await session.scalar(
        select(Integration).where(
            Integration.application_id == application.id, Integration.type == type_.upper()
        )
    )
    if integration is None:
        raise NotFound("integration", type_)
    return application, integration
