"""Who a campaign's message goes to, or why it is skipped — one rule for every path.

Broadcast expansion applies the same rule in SQL (`broadcasts/expand.py`, set-based);
single sends and explicit recipients apply it here, row by row.
"""

from __future__ import annotations

from typing import Protocol


class _Campaign(Protocol):
    channel: str
    purpose: str


class _Contact(Protocol):
    email: str | None
    phone: str | None
    email_status: str
    sms_status: str


def address_or_skip(campaign: _Campaign, contact: _Contact) -> tuple[str | None, str | None]:
    """(address for the campaign's channel, skip reason or None).

    Skipped: no address for the channel, or unsubscribed from it on a marketing campaign
    (transactional messages go to unsubscribed contacts too).
    """
    is_email = campaign.channel == "email"
    address = contact.email if is_email else contact.phone
    if address is None:
        return None, "no email address" if is_email else "no phone number"
    status = contact.email_status if is_email else contact.sms_status
    if campaign.purpose == "marketing" and status == "unsubscribed":
        return address, "unsubscribed"
    return address, None
