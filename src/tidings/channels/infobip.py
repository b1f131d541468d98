"""Infobip SMS API v2: many messages per request.

    POST {base_url}/sms/2/text/advanced
    Authorization: App <api key>
    {"bulkId": "tidings-…",
     "messages": [{"destinations": [{"to": "41793026727", "messageId": "42"}],
                   "from": "Acme", "text": "…",
                   "notifyUrl": "https://tidings.example/reports/7/infobip/<token>",
                   "notifyContentType": "application/json"}, …]}

    200 {"bulkId": "…",
         "messages": [{"to": "41793026727", "messageId": "42",
                       "status": {"groupId": 1, "groupName": "PENDING",
                                  "id": 26, "name": "PENDING_ACCEPTED",
                                  "description": "…"}}, …]}

A batch goes out in chunks of `batch_size`, one request each, up to `max_concurrency`
requests at a time. We set each destination's `messageId` to our own id and read each
response entry back by it, not by position. A status in the groups REJECTED (5),
UNDELIVERABLE (2) or EXPIRED (4) is a PermanentSendError; PENDING (1) and DELIVERED (3)
are Sent with the messageId, which is also what Infobip's delivery reports carry.

With a `notify_url` (the registry builds it from `TIDINGS_PUBLIC_URL` and the connection's
`inbound_token`), every message asks Infobip to POST its delivery report there as JSON,
so reports reach Tidings whatever the account's portal setting says.

An HTTP-level failure (see `http_common`) applies to every message of its request. An
error body {"requestError": {"serviceException": {"messageId": "…", "text": "…"}}} gives
the reason.

Field names as in Infobip's API reference and its generated Python client
(SmsAdvancedTextualRequest, SmsTextualMessage, SmsDestination, SmsResponseDetails,
MessageStatus).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Final
from uuid import uuid4

import httpx
from pydantic import Field, HttpUrl

from tidings.channels.base import Outgoing, PermanentSendError, Report, Result, Sent
from tidings.channels.http_common import (
    REQUEST_ERRORS,
    HttpChannel,
    dig,
    each_limited,
    json_body,
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
from tidings.db.engine import Database
from tidings.net.ssrf import STRICT, OutboundPolicy

PATH: Final = "/sms/2/text/advanced"
# Status groups (Infobip "Response status and error codes"). At submission a message is
# PENDING or REJECTED; the other two final failures are handled the same way in case a
# gateway reports them synchronously.
_FAILED_GROUPS: Final = frozenset({"UNDELIVERABLE", "EXPIRED", "REJECTED"})
_FAILED_GROUP_IDS: Final = frozenset({2, 4, 5})


@dataclass(frozen=True, slots=True, kw_only=True)
class InfobipSettings:
    """One Infobip account: its personal base URL and an API key. `notify_url` is where
    Infobip posts delivery reports (None: where the account's portal says)."""

    base_url: str
    api_key: str = field(repr=False)
    batch_size: int = 100
    notify_url: str | None = field(default=None, repr=False)  # holds the inbound token

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


class InfobipChannel(HttpChannel):
    """Sends a batch in requests of up to `batch_size` messages."""

    parallelism: int | None = None  # requests go `max_concurrency` at a time

    def __init__(
        self,
        settings: InfobipSettings,
        *,
        client: httpx.AsyncClient | None = None,
        max_concurrency: int = 10,
        policy: OutboundPolicy = STRICT,
    ) -> None:
        super().__init__(client=client, max_concurrency=max_concurrency, policy=policy)
        self.settings = settings
        self._url = settings.base_url.rstrip("/") + PATH
        self._headers = {
            "Authorization": f"App {settings.api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._secrets = (settings.api_key,)

    @property
    def messages_per_request(self) -> int:
        """`batch_size`: the dispatcher counts a request, not a message, against the
        connection's `max_concurrency`, as `send` does (see `Channel`)."""
        return self.settings.batch_size

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One Result per message, in order; failures are results, never raised."""
        size = self.settings.batch_size
        chunks = [batch[start : start + size] for start in range(0, len(batch), size)]
        per_chunk = await each_limited(chunks, self._send_chunk, limit=self._limit)
        return [result for results in per_chunk for result in results]

    def payload(self, chunk: Sequence[Outgoing]) -> bytes:
        """The request body for one chunk, as JSON.

        Written piece by piece rather than through `json.dumps` of a dict per message,
        which took most of a send's CPU: every string that comes from outside (the
        number, the text, the sender, the report URL) still goes through the json
        module's own escaping, so the document is the same.
        """
        tails: dict[str | None, str] = {}  # by sender: a batch usually has one
        notify = self.settings.notify_url
        report = (
            f',"notifyUrl":{_quote(notify)},"notifyContentType":"application/json"'
            if notify
            else ""
        )
        parts = []
        for message in chunk:
            tail = tails.get(message.sender)
            if tail is None:
                tail = f',"from":{_quote(message.sender)}' if message.sender else ""
                tail = tails[message.sender] = tail + report
            parts.append(
                f'{{"destinations":[{{"to":{_quote(message.recipient.removeprefix("+"))},'
                f'"messageId":"{int(message.message_id)}"}}],'
                f'"text":{_quote(sms_text(message))}{tail}}}'
            )
        # bulkId is ours, so the request can be found in Infobip's logs; unique per request.
        return f'{{"bulkId":"tidings-{uuid4().hex}","messages":[{",".join(parts)}]}}'.encode()

    async def _send_chunk(self, chunk: Sequence[Outgoing]) -> list[Result]:
        try:
            response = await self.client.post(
                self._url, content=self.payload(chunk), headers=self._headers
            )
        except REQUEST_ERRORS as exc:
            return [transport_error(exc, secrets=self._secrets)] * len(chunk)
        document = json_body(response)
        error = status_error(response, detail=_service_exception(document), secrets=self._secrets)
        if error is not None:
            return [error] * len(chunk)
        reported: dict[str, dict[str, Any]] = {}
        entries = document.get("messages") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("messageId"), str):
                reported[entry["messageId"]] = entry
        return [_result(reported.get(str(m.message_id))) for m in chunk]


def _result(entry: dict[str, Any] | None) -> Result:
    if entry is None:
        # Infobip took the request but said nothing of this message; sending it again
        # could send it twice, so it is not retried.
        return PermanentSendError("Infobip accepted the request but did not report this message")
    status = entry.get("status")
    status = status if isinstance(status, dict) else {}
    if status.get("groupName") in _FAILED_GROUPS or status.get("groupId") in _FAILED_GROUP_IDS:
        group = status.get("groupName") or f"group {status.get('groupId')}"
        name = status.get("name") or status.get("id") or "unknown"
        description = status.get("description")
        reason = f"Infobip {group}: {name}"
        return PermanentSendError(f"{reason} ({description})" if description else reason)
    return Sent(entry["messageId"])  # a str: only such entries are read


def _service_exception(document: Any) -> str | None:
    exception = dig(document, "requestError.serviceException")
    if not isinstance(exception, dict):
        return None
    parts = [str(exception[k]) for k in ("messageId", "text") if exception.get(k)]
    return ": ".join(parts) or None


# ── the connection kind (see channels/provider.py) ──────────────────────────────────


class InfobipSettingsIn(SmsSettings):
    base_url: HttpUrl
    batch_size: int = Field(default=100, ge=1, le=1000)


class InfobipCredentials(SmsCredentials):
    api_key: str = Field(min_length=1)


def notify_url(spec: ConnectionSpec, public_url: str) -> str | None:
    """The connection's own Infobip report URL (see docs/reports.md), which Tidings asks
    Infobip to post each message's delivery report to; None without an `inbound_token`
    (a report there could not be authenticated)."""
    return report_url(spec, public_url, "infobip")


def _build(spec: ConnectionSpec, db: Database) -> InfobipChannel:
    settings = InfobipSettings(**options(spec), notify_url=notify_url(spec, db.settings.public_url))
    return InfobipChannel(
        settings, max_concurrency=spec.max_concurrency, policy=db.settings.outbound_policy
    )


PROVIDER = Provider(
    kind="infobip",
    channels=frozenset({"sms"}),
    settings=InfobipSettingsIn,
    credentials=InfobipCredentials,
    build=_build,
    addresses=lambda s: [url_address("base_url", s.base_url)],
)
