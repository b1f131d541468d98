"""Who a message goes to, why it is skipped, and when it is due: each rule written once in
Python (row by row: single sends, invites, explicit recipients) and once in SQL (set-based
broadcast expansion, and the last look before sending), side by side. Change both
together: tests/integration/outbox/test_rules.py runs both over the same rows on both
databases and checks that they agree.

Skip reasons, first reason first:
    "no email address" / "no phone number"   the contact has no address for the channel
    "country not allowed"                     an SMS to a country outside the org's
                                              allowlist (a number of no country is in none)
    "suppressed: <reason>"                    the address is on the org's suppression list
                                              for the channel with a reason that holds for
                                              the campaign's purpose (`MARKETING_ONLY`)
    "unsubscribed"                            unsubscribed from the channel, on a marketing
                                              campaign (transactional mail still goes)

Fallback: a skip for want of an address, for a suppression or for an unsubscription lets a
campaign with a fallback campaign send the other channel's message instead (`falls_back`);
"country not allowed" does not — the org refused that destination, not the contact.

Due time: when the send asked for (a single send's `send_at`, a scheduled broadcast's
time), else at once; then, when the send's `Timing` says so (`timing`), moved in the
recipient's zone (`recipient_zone`: the contact's own, else its phone's country's when that
country has one zone, else the org's): to the wall time the broadcast asked for ("09:30
local"), and, for marketing only, out of the quiet hours and onto an allowed sending day.
Transactional messages ignore quiet hours and sending days. The SQL twin computes the
instant once per distinct zone in Python (`outbox.local`, exact across DST) and gives
each row its zone's instant with one CASE, so an expansion loops over zones, never
contacts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Protocol

from sqlalchemy import ColumnElement, FromClause, and_, case, false, func, literal, null, or_, true

from tidings.db.base import UTCDateTime
from tidings.outbox.local import Timing, Window, country_zone, known_zones
from tidings.suppressions.models import MARKETING_ONLY

SUPPRESSED_PREFIX = "suppressed: "
COUNTRY_NOT_ALLOWED = "country not allowed"


class Sender(Protocol):
    """What the rules read of a campaign."""

    channel: str
    purpose: str


class Recipient(Protocol):
    """What the rules read of a contact."""

    email: str | None
    phone: str | None
    phone_country: str | None
    email_status: str
    sms_status: str


class Placed(Protocol):
    """What the zone rule reads of a contact."""

    timezone: str | None
    phone_country: str | None


# ── Python ───────────────────────────────────────────────────────────────────────────


def suppression_applies(reason: str, *, purpose: str) -> bool:
    """Whether a suppression for `reason` stops a message of this campaign purpose."""
    return purpose == "marketing" or reason not in MARKETING_ONLY


def address_or_skip(
    campaign: Sender,
    contact: Recipient,
    *,
    sms_countries: Collection[str] | None,
    suppressed: Mapping[str, str],
) -> tuple[str | None, str | None]:
    """(address for the campaign's channel, skip reason or None).

    `sms_countries`: the org's allowlist (None = every country); `suppressed`: address →
    reason of the org's suppressions on the channel (`suppressions.service.reasons`).
    """
    is_email = campaign.channel == "email"
    address = contact.email if is_email else contact.phone
    if address is None:
        return None, "no email address" if is_email else "no phone number"
    if not is_email and sms_countries is not None and contact.phone_country not in sms_countries:
        return address, COUNTRY_NOT_ALLOWED
    listed = suppressed.get(address)
    if listed is not None and suppression_applies(listed, purpose=campaign.purpose):
        return address, SUPPRESSED_PREFIX + listed
    status = contact.email_status if is_email else contact.sms_status
    if campaign.purpose == "marketing" and status == "unsubscribed":
        return address, "unsubscribed"
    return address, None


def falls_back(reason: str | None) -> bool:
    """Whether a message skipped for `reason` lets its fallback campaign's message go
    instead (a message not skipped does not fall back)."""
    return reason is not None and reason != COUNTRY_NOT_ALLOWED


def recipient_zone(contact: Placed, *, org_zone: str) -> str:
    """The IANA zone a contact's wall-clock times are read in."""
    if contact.timezone and contact.timezone in known_zones():
        return contact.timezone
    return country_zone(contact.phone_country) or org_zone


def timing(
    *,
    purpose: str,
    local_time: time | None = None,
    local_date: date | None = None,
    quiet: Window | None = None,
    days: Collection[int] | None = None,
) -> Timing:
    """A send's `Timing`: its local wall time for every purpose; the quiet hours and
    sending days (the campaign's override, else the org's for the channel) for
    marketing only — a transactional message is never held back by them."""
    marketing = purpose == "marketing"
    return Timing(
        local_time=local_time,
        local_date=local_date,
        quiet=quiet if marketing else None,
        days=frozenset(days) if marketing and days is not None else None,
    )


def due_time(
    requested: datetime | None,
    *,
    now: datetime,
    zone: str | None = None,
    timing: Timing | None = None,
) -> datetime:
    """When a new message becomes due; `zone`: its `recipient_zone`."""
    base = requested if requested is not None else now
    if timing is None or zone is None or not timing.per_zone:
        return base
    return timing.due(base, zone)


# ── SQL ──────────────────────────────────────────────────────────────────────────────


def suppression_applies_sql(
    reason: ColumnElement[Any], *, marketing: bool | ColumnElement[bool]
) -> ColumnElement[bool]:
    """`suppression_applies` for a reason column; `marketing` is the purpose, known (bool)
    or read per row (a boolean expression)."""
    broad = reason.not_in(sorted(MARKETING_ONLY))
    if isinstance(marketing, bool):
        return true() if marketing else broad
    return or_(broad, marketing)


def suppression_match(
    listed: FromClause,
    *,
    org_id: Any,
    channel: Any,
    address: ColumnElement[Any],
    marketing: bool | ColumnElement[bool],
) -> ColumnElement[bool]:
    """A row of `listed` (the suppressions table, aliased) that stops this message: the
    org's, on the channel, for the address, with a reason that holds for the purpose. One
    probe of the unique (org, channel, address) index."""
    return and_(
        listed.c.org_id == org_id,
        listed.c.channel == channel,
        listed.c.address == address,
        suppression_applies_sql(listed.c.reason, marketing=marketing),
    )


def skip_reason_sql(
    contacts: FromClause,
    listed: FromClause,
    *,
    channel: str,
    purpose: str,
    sms_countries: Collection[str] | None,
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(address, skip reason or NULL) of each row of `contacts`, LEFT JOINed to `listed`
    on `suppression_match` (at most one row per contact): `address_or_skip` in SQL."""
    c = contacts.c
    is_email = channel == "email"
    address = c.email if is_email else c.phone
    # NOT IN is NULL for a NULL country: a number of no country is spelled out as refused.
    refused = (
        false()
        if is_email or sms_countries is None
        else or_(c.phone_country.is_(None), c.phone_country.not_in(sorted(sms_countries)))
    )
    subscription = c.email_status if is_email else c.sms_status
    unsubscribed = (subscription == "unsubscribed") if purpose == "marketing" else false()
    reason = case(
        (address.is_(None), literal("no email address" if is_email else "no phone number")),
        (refused, literal(COUNTRY_NOT_ALLOWED)),
        (listed.c.id.is_not(None), literal(SUPPRESSED_PREFIX) + listed.c.reason),
        (unsubscribed, literal("unsubscribed")),
        else_=null(),
    )
    return address, reason


def falls_back_sql(reason: ColumnElement[Any]) -> ColumnElement[bool]:
    """`falls_back` for a skip reason column."""
    return reason.is_not(None) & (reason != literal(COUNTRY_NOT_ALLOWED))


def due_time_sql(
    requested: datetime | None,
    *,
    now: datetime,
    contacts: FromClause | None = None,
    places: Iterable[tuple[str | None, str | None]] = (),
    org_zone: str = "UTC",
    timing: Timing | None = None,
) -> ColumnElement[datetime]:
    """`due_time` as a column of a set-based insert over `contacts`, for contacts placed
    at `places` — the distinct (timezone, phone_country) pairs of the audience
    (`create.places`): each zone's instant is computed here, once, and each row picks
    its own by one CASE over its timezone (or, without one, its phone's country), the
    instants shared by several zones in one branch. A contact placed elsewhere (one
    added since `places` was read) gets the org's zone's."""
    if timing is None or contacts is None or not timing.per_zone:
        return func.coalesce(
            literal(requested, type_=UTCDateTime()), literal(now, type_=UTCDateTime())
        )
    c = contacts.c

    def due(zone: str) -> datetime:
        return due_time(requested, now=now, zone=zone, timing=timing)

    by_zone: dict[datetime, set[str]] = {}
    by_country: dict[datetime, set[str]] = {}
    for timezone, country in set(places):
        zone = recipient_zone(Place(timezone, country), org_zone=org_zone)
        if timezone is not None:
            by_zone.setdefault(due(zone), set()).add(timezone)
        elif country is not None:
            by_country.setdefault(due(zone), set()).add(country)
    branches = [
        (c.timezone.in_(sorted(zones)), literal(at, type_=UTCDateTime()))
        for at, zones in sorted(by_zone.items())
    ] + [
        (c.timezone.is_(None) & c.phone_country.in_(sorted(countries)), literal(at, UTCDateTime()))
        for at, countries in sorted(by_country.items())
    ]
    fallback = literal(due(org_zone), type_=UTCDateTime())
    return case(*branches, else_=fallback) if branches else fallback


@dataclass(slots=True)
class Place:
    """Where a contact is, as the zone rule reads it: for rows grouped by place."""

    timezone: str | None
    phone_country: str | None
