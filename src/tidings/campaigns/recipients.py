"""Who a campaign's message goes to, or why it is skipped — one rule for every path.

Broadcast expansion applies the same rule in SQL (`broadcasts/expand.py`, set-based);
single sends and explicit recipients apply it here, row by row. Change both together.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

# Suppression reasons that stop marketing only (see `tidings.suppressions.service`).
MARKETING_ONLY = frozenset({"unsubscribed"})


class _Campaign(Protocol):
    channel: str
    purpose: str


class _Contact(Protocol):
    email: str | None
    phone: str | None
    phone_country: str | None
    email_status: str
    sms_status: str


def address_or_skip(
    campaign: _Campaign,
    contact: _Contact,
    *,
    sms_countries: Collection[str] | None,
    suppressed: Mapping[str, str],
) -> tuple[str | None, str | None]:
    """(address for the campaign's channel, skip reason or None).

    Skipped, first reason first: no address for the channel; an SMS to a phone whose
    country is not in the org's `sms_countries` (None = every country; a number of no
    country is in none); the address on the org's suppression list for the channel
    (`suppressed`: address → reason, from `suppressions.service.reasons`) with a reason
    that holds for the campaign's purpose — "suppressed: <reason>"; unsubscribed from the
    channel on a marketing campaign (transactional messages go to unsubscribed contacts
    too).
    """
    is_email = campaign.channel == "email"
    address = contact.email if is_email else contact.phone
    if address is None:
        return None, "no email address" if is_email else "no phone number"
    if not is_email and sms_countries is not None and contact.phone_country not in sms_countries:
        return address, "country not allowed"
    listed = suppressed.get(address)
    if listed is not None and (campaign.purpose == "marketing" or listed not in MARKETING_ONLY):
        return address, f"suppressed: {listed}"
    status = contact.email_status if is_email else contact.sms_status
    if campaign.purpose == "marketing" and status == "unsubscribed":
        return address, "unsubscribed"
    return address, None
