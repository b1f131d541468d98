"""Inbound SMS keywords: STOP-family words unsubscribe the sender's number, START-family
words subscribe it again.

The gateway posts inbound messages to `POST /inbound/sms/{connection_id}/{token}`, where
`token` is the connection's write-only `credentials.inbound_token`; a wrong or missing
token, or a connection that is not SMS, is answered 404 and changes nothing. Bodies
understood (`parse`): generic JSON `{"from", "text"}`, Twilio's form fields `From` and
`Body`, and Infobip's JSON `results[]` with `from` and `cleanText` or `text`.

A keyword is the whole message, trimmed and case-insensitive (`stop`, ` Stop `; not
`please stop`). STOP → the number is suppressed on SMS (reason `stop_keyword`, source
`inbound`) and the org's contact with that phone is unsubscribed from SMS. START → that
suppression (only a `stop_keyword` one: a hard bounce or a manual entry stays) is removed
and the contact subscribed again. Anything else is ignored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.connections.models import Connection
from tidings.connections.service import connection_by_token
from tidings.contacts.models import Contact
from tidings.contacts.normalize import normalize_phone
from tidings.suppressions.models import Suppression
from tidings.suppressions.service import suppress

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})


def keyword(text: str) -> str | None:
    """ "stop" or "start" when the whole message is such a keyword, else None. Accents
    are folded (ARRÊT is ARRET)."""
    folded = unicodedata.normalize("NFKD", text.strip().upper())
    word = "".join(ch for ch in folded if not unicodedata.combining(ch))
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def parse(body: Any) -> list[tuple[str, str]]:
    """(sender, text) pairs of an inbound request body (JSON object or form fields)."""
    if not isinstance(body, Mapping):
        return []
    if isinstance(body.get("results"), list):  # Infobip
        pairs = []
        for item in body["results"]:
            if isinstance(item, Mapping):
                text = item.get("cleanText") or item.get("text")
                if isinstance(item.get("from"), str) and isinstance(text, str):
                    pairs.append((item["from"], text))
        return pairs
    sender = body.get("from", body.get("From"))
    text = body.get("text", body.get("Body"))
    if isinstance(sender, str) and isinstance(text, str):
        return [(sender, text)]
    return []


async def authorised_connection(
    session: AsyncSession, *, connection_id: int, token: str
) -> Connection:
    """The sms connection whose `inbound_token` this is, else NotFound."""
    return await connection_by_token(
        session,
        connection_id=connection_id,
        channel="sms",
        credential="inbound_token",
        token=token,
        what="inbound endpoint",
    )


async def receive(session: AsyncSession, *, connection_id: int, token: str, body: Any) -> list[str]:
    """Apply the keywords of an inbound request (in the caller's write transaction); the
    action taken per message: `unsubscribed`, `resubscribed` or `ignored`."""
    connection = await authorised_connection(session, connection_id=connection_id, token=token)
    org_id = connection.org_id
    actions = []
    for sender, text in parse(body):
        word = keyword(text)
        try:
            phone = normalize_phone(sender if sender.startswith("+") else f"+{sender}", None)
        except ValueError:
            word = None
        if word is None:
            actions.append("ignored")
            continue
        contact = (Contact.org_id == org_id) & (Contact.phone == phone)
        if word == "stop":
            await suppress(
                session,
                org_id=org_id,
                channel="sms",
                address=phone,
                reason="stop_keyword",
                source="inbound",
                note=text.strip()[:500],
            )
            await session.execute(update(Contact).where(contact).values(sms_status="unsubscribed"))
            actions.append("unsubscribed")
        else:
            await session.execute(
                delete(Suppression).where(
                    Suppression.org_id == org_id,
                    Suppression.channel == "sms",
                    Suppression.address == phone,
                    Suppression.reason == "stop_keyword",
                )
            )
            await session.execute(update(Contact).where(contact).values(sms_status="subscribed"))
            actions.append("resubscribed")
    return actions
