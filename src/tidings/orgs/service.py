"""Orgs (tenants). Created by the operator (CLI, first start); read and tuned through the API."""

from __future__ import annotations

import functools
import re
from zoneinfo import available_timezones

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.orgs.models import WEEKDAYS, Org
from tidings.orgs.schemas import OrgChanges

RETENTIONS = ("content_retention_days", "event_retention_days", "message_retention_days")

# Never all digits: `--org 12` must mean the org with id 12, not a login.
_LOGIN = re.compile(r"^(?![0-9]+$)[a-z0-9][a-z0-9._-]{0,63}$")


def login_from_name(name: str) -> str:
    """`Acme Corp.` → `acme-corp`: a login an operator can type."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    if not slug:
        return "org"
    return f"org-{slug}" if slug.isdigit() else slug


def check_region(region: str | None, *, field: str = "phone_region") -> str | None:
    if region is None:
        return None
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput.field(field, f"unknown region {region!r} (ISO 3166 alpha-2)")
    return region


def check_countries(codes: list[str] | None, *, field: str = "sms_countries") -> list[str] | None:
    """Upper-cased, distinct and sorted; InvalidInput naming each unknown code by index.

    Codes are checked against the regions phonenumbers knows, the same set a contact's
    `phone_country` comes from, so an accepted code can match a phone.
    """
    if codes is None:
        return None
    upper = [code.strip().upper() for code in codes]
    errors = [
        FieldError(f"{field}[{index}]", f"unknown country {code!r} (ISO 3166 alpha-2)")
        for index, code in enumerate(upper)
        if code not in phonenumbers.SUPPORTED_REGIONS
    ]
    if errors:
        raise InvalidInput(errors)
    return sorted(set(upper))


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str | None, *, field: str = "timezone") -> str | None:
    if name is not None and name not in _zones():
        raise InvalidInput.field(field, f"unknown IANA time zone {name!r}")
    return name


async def add_org(
    session: AsyncSession, *, name: str, login: str | None = None, phone_region: str | None = None
) -> Org:
    """Create an org (flushed: it has its id). `keys.service.create_org` gives it its first
    key."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput.field("name", "must be 1 to 200 characters")
    login = login or login_from_name(name)
    if not _LOGIN.match(login):
        raise InvalidInput.field(
            "login", "lower-case letters, digits, '.', '_' or '-', at most 64, not all digits"
        )
    phone_region = check_region(phone_region)
    if await session.scalar(select(Org.id).where(Org.login == login)) is not None:
        raise InvalidInput.field("login", f"{login!r} is taken")
    org = Org(name=name, login=login, phone_region=phone_region)
    session.add(org)
    await session.flush()
    return org


async def get_org(session: AsyncSession, *, org_id: int) -> Org:
    org = await session.get(Org, org_id)
    if org is None:
        raise NotFound("org", org_id)
    return org


async def update_org(session: AsyncSession, *, org_id: int, changes: OrgChanges) -> Org:
    org = await get_org(session, org_id=org_id)
    if "name" in changes:
        org.name = changes["name"]
    if "phone_region" in changes:
        org.phone_region = check_region(changes["phone_region"])
    if "sms_countries" in changes:
        org.sms_countries = check_countries(changes["sms_countries"])
    if "timezone" in changes:
        org.timezone = check_timezone(changes["timezone"])
    if "quiet_hours" in changes:
        org.quiet_hours = changes["quiet_hours"]
    if "sending_days" in changes:
        days = changes["sending_days"]
        org.sending_days = None if days is None else sorted(set(days), key=WEEKDAYS.index)
    for name in RETENTIONS:
        if name in changes:
            setattr(org, name, changes[name])  # type: ignore[literal-required]
    await session.flush()
    return org


async def count_orgs(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Org)) or 0)


async def first_org(session: AsyncSession) -> Org | None:
    """The org made first (the one `serve --bootstrap` creates), None without any."""
    return await session.scalar(select(Org).order_by(Org.id).limit(1))


async def list_orgs(session: AsyncSession) -> list[Org]:
    return list(await session.scalars(select(Org).order_by(Org.id)))
