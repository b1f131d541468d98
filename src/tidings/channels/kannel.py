"""Kannel's smsbox HTTP interface: one GET /cgi-bin/sendsms per message.

    GET {base_url}/cgi-bin/sendsms?username=&password=&from=&to=&text=
        &charset=UTF-8&coding=0|2&dlr-mask=31&dlr-url=...

The text always travels as UTF-8 (`charset`); `coding` tells Kannel what to put on the
air: 0 (GSM 7-bit) when every character is in the GSM alphabet, else 2 (UCS-2), the
same rule `tidings.content.sms` bills segments by.

Kannel answers 202 "0: Accepted for delivery" or "3: Queued for later delivery" (both
success: Kannel owns the message now), a 4xx with a reason for a request it will never
deliver, and 503 for a temporary failure. It returns no id of its own, so the provider
id is "kannel-<message id>"; delivery reports come back on `dlr_url`, which Tidings
builds itself from the connection (`dlr_url()`: its report URL, with the `inbound_token`
Tidings generates when the connection has none), so the operator types no token and
guesses no id.

Kannel takes its credentials in the query string. They are redacted from every reason,
but anything that logs request URLs between here and Kannel will see them: keep the
smsbox on a private network or behind TLS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, quote_plus

import httpx
from pydantic import Field, HttpUrl

from tidings.channels.base import Outgoing, Report, Result, Sent
from tidings.channels.http_common import (
    REQUEST_ERRORS,
    HttpChannel,
    each_limited,
    sms_text,
    status_error,
    transport_error,
)
from tidings.channels.provider import (
    ConnectionSpec,
    Provider,
    SmsCredentials,
    SmsSettings,
    options,
    report_url,
    url_address,
)
from tidings.content.sms import is_gsm7
from tidings.db.engine import Database
from tidings.net.ssrf import STRICT, OutboundPolicy

CODING_GSM7 = "0"
CODING_UCS2 = "2"


@dataclass(frozen=True, slots=True, kw_only=True)
class KannelSettings:
    """One smsbox and its sendsms user.

    `dlr_url` is a template: "{message_id}" is replaced with our id, and Kannel's own
    escapes (%d the report type, %A the SMSC reply, ...) are passed through for Kannel
    to fill. No `dlr_url`, no delivery reports (and no `dlr-mask`). It holds the
    connection's token, `report_token`, kept out of reasons like the password.
    """

    base_url: str
    username: str
    password: str = field(repr=False)
    dlr_url: str | None = field(default=None, repr=False)
    dlr_mask: int = 31
    report_token: str | None = field(default=None, repr=False)


class KannelChannel(HttpChannel):
    """Sends each message as its own request, up to `max_concurrency` at a time."""

    # Capabilities (see `Channel`): one request per message, `max_concurrency` at a time.
    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(
        self,
        settings: KannelSettings,
        *,
        client: httpx.AsyncClient | None = None,
        max_concurrency: int = 10,
        policy: OutboundPolicy = STRICT,
    ) -> None:
        super().__init__(client=client, max_concurrency=max_concurrency, policy=policy)
        self.settings = settings
        self._url = settings.base_url.rstrip("/") + "/cgi-bin/sendsms"
        # A gateway that echoes the request URL echoes the password percent-encoded.
        self._secrets = tuple(
            spelling
            for secret in (settings.password, settings.report_token or "")
            for spelling in (secret, quote(secret, safe=""), quote_plus(secret))
        )

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One Result per message, in order; failures are results, never raised."""
        return await each_limited(batch, self._send_one, limit=self._limit)

    def query(self, message: Outgoing) -> dict[str, str]:
        """The sendsms query parameters for one message."""
        text = sms_text(message)
        params = {"username": self.settings.username, "password": self.settings.password}
        if message.sender:
            params["from"] = message.sender
        params |= {
            "to": message.recipient,
            "text": text,
            "charset": "UTF-8",
            "coding": CODING_GSM7 if is_gsm7(text) else CODING_UCS2,
        }
        if self.settings.dlr_url:
            # str.replace, not str.format: the URL is full of Kannel's %-escapes and may
            # hold braces of its own.
            params["dlr-mask"] = str(self.settings.dlr_mask)
            params["dlr-url"] = self.settings.dlr_url.replace(
                "{message_id}", str(message.message_id)
            )
        return params

    async def _send_one(self, message: Outgoing) -> Result:
        try:
            response = await self.client.get(self._url, params=self.query(message))
        except REQUEST_ERRORS as exc:
            return transport_error(exc, secrets=self._secrets)
        error = status_error(response, secrets=self._secrets)
        if error is not None:
            return error
        return Sent(f"kannel-{message.message_id}")


# ── the connection kind (see channels/provider.py) ──────────────────────────────────


class KannelSettingsIn(SmsSettings):
    base_url: HttpUrl
    delivery_reports: bool = Field(
        default=True,
        description="Ask Kannel for delivery reports, on a dlr-url Tidings builds itself",
    )


class KannelCredentials(SmsCredentials):
    username: str
    password: str


DLR_QUERY: Final = "?message_id={message_id}&type=%d&smsc-id=%i&reply=%A&ts=%T"
"""What Kannel fills in (`%d` the report type, …) and `reports/parsers.py` reads."""


def dlr_url(spec: ConnectionSpec, public_url: str) -> str | None:
    """The dlr-url template of a connection: its Kannel report URL (`report_url`) and the
    query Kannel fills in; None when it asks for no reports."""
    if not spec.settings.get("delivery_reports", True):
        return None
    url = report_url(spec, public_url, "kannel")
    return None if url is None else url + DLR_QUERY


def _build(spec: ConnectionSpec, db: Database) -> KannelChannel:
    given = options(spec)
    given.pop("delivery_reports", None)
    settings = KannelSettings(
        **given,
        dlr_url=dlr_url(spec, db.settings.public_url),
        report_token=spec.credentials.get("inbound_token"),
    )
    return KannelChannel(
        settings, max_concurrency=spec.max_concurrency, policy=db.settings.outbound_policy
    )


PROVIDER = Provider(
    kind="kannel",
    channels=frozenset({"sms"}),
    settings=KannelSettingsIn,
    credentials=KannelCredentials,
    build=_build,
    generated=("inbound_token",),
    addresses=lambda s: [url_address("base_url", s.base_url)],
)
