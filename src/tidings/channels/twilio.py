"""Twilio Programmable Messaging: one form-encoded POST per message.

    POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json
    Authorization: Basic base64(account_sid:auth_token)
    To=+41793026727&Body=…&From=+15005550006 | MessagingServiceSid=MG…
        [&StatusCallback=https://…?message_id=42]

    201 {"sid": "SM…", "status": "queued", …}
    4xx {"code": 21211, "message": "The 'To' number … is not a valid phone number.",
         "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}

`From` is the message's sender when it has one, else `from_number`; `MessagingServiceSid`
is sent whenever it is configured (Twilio then picks the sender from the service's pool
unless `From` names one). With neither a sender nor a service the message fails
permanently without a request.

Status codes are classified as in `http_common`; a Twilio error body gives the reason
("Twilio error 21211: …"). A 2xx whose status is already "failed" or "undelivered" is
permanent, with Twilio's error_code and error_message.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import Field, HttpUrl

from tidings.channels.base import Outgoing, PermanentSendError, Report, Result, Sent
from tidings.channels.http_common import (
    REQUEST_ERRORS,
    HttpChannel,
    each_limited,
    json_body,
    sms_text,
    status_error,
    transport_error,
)
from tidings.channels.provider import (
    Provider,
    SmsCredentials,
    SmsSettings,
    options,
    url_address,
)
from tidings.net.ssrf import STRICT, OutboundPolicy

DEFAULT_BASE_URL: Final = "https://api.twilio.com"
_FAILED: Final = frozenset({"failed", "undelivered"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TwilioSettings:
    """One Twilio account. `status_callback` is a template: "{message_id}" is replaced."""

    account_sid: str
    auth_token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


class TwilioChannel(HttpChannel):
    """Sends each message as its own request, up to `max_concurrency` at a time."""

    # Capabilities (see `Channel`): one request per message, `max_concurrency` at a time.
    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        client: httpx.AsyncClient | None = None,
        max_concurrency: int = 10,
        policy: OutboundPolicy = STRICT,
    ) -> None:
        super().__init__(client=client, max_concurrency=max_concurrency, policy=policy)
        self.settings = settings
        self._url = (
            f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{quote(settings.account_sid, safe='')}/Messages.json"
        )
        self._auth = httpx.BasicAuth(settings.account_sid, settings.auth_token)
        basic = f"{settings.account_sid}:{settings.auth_token}".encode()
        self._secrets = (settings.auth_token, base64.b64encode(basic).decode("ascii"))

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One Result per message, in order; failures are results, never raised."""
        return await each_limited(batch, self._send_one, limit=self._limit)

    def form(self, message: Outgoing) -> dict[str, str] | None:
        """The form fields for one message; None when it has nowhere to send from."""
        fields = {"To": message.recipient, "Body": sms_text(message)}
        sender = message.sender or self.settings.from_number
        if sender:
            fields["From"] = sender
        if self.settings.messaging_service_sid:
            fields["MessagingServiceSid"] = self.settings.messaging_service_sid
        elif not sender:
            return None
        if self.settings.status_callback:
            fields["StatusCallback"] = self.settings.status_callback.replace(
                "{message_id}", str(message.message_id)
            )
        return fields

    async def _send_one(self, message: Outgoing) -> Result:
        fields = self.form(message)
        if fields is None:
            return PermanentSendError(
                "no sender: the message has none and the connection sets neither "
                "from_number nor messaging_service_sid"
            )
        try:
            response = await self.client.post(self._url, data=fields, auth=self._auth)
        except REQUEST_ERRORS as exc:
            return transport_error(exc, secrets=self._secrets)
        document = json_body(response)
        error = status_error(response, detail=_twilio_error(document), secrets=self._secrets)
        if error is not None:
            return error
        if not isinstance(document, dict):
            document = {}
        if document.get("status") in _FAILED:
            code = document.get("error_code")
            why = document.get("error_message") or "no reason given"
            return PermanentSendError(f"Twilio {document['status']}: error {code}: {why}")
        sid = document.get("sid")
        if not isinstance(sid, str) or not sid:
            # Twilio answered 2xx, so the message may exist; a retry could send it twice.
            return PermanentSendError(
                f"HTTP {response.status_code} without a message sid; not retried"
            )
        return Sent(sid)


def _twilio_error(document: Any) -> str | None:
    if not isinstance(document, dict) or "code" not in document:
        return None
    message = document.get("message") or "no message"
    return f"Twilio error {document['code']}: {message}"


# ── the connection kind (see channels/provider.py) ──────────────────────────────────


class TwilioSettingsIn(SmsSettings):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    base_url: HttpUrl = HttpUrl("https://api.twilio.com")
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


class TwilioCredentials(SmsCredentials):
    auth_token: str = Field(min_length=1)


PROVIDER = Provider(
    kind="twilio",
    channels=frozenset({"sms"}),
    settings=TwilioSettingsIn,
    credentials=TwilioCredentials,
    build=lambda spec, db: TwilioChannel(
        TwilioSettings(**options(spec)),
        max_concurrency=spec.max_concurrency,
        policy=db.settings.outbound_policy,
    ),
    addresses=lambda s: [url_address("base_url", s.base_url)],
)
