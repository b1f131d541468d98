"""A generic JSON HTTP SMS gateway: one request per message, body from a template.

The body template is a JSON document whose string values may hold placeholders, filled
per message:

    {to}          the recipient, E.164 ("+41793026727")
    {to_digits}   the recipient without the plus ("41793026727")
    {text}        the message text
    {sender}      the sender id ("" when the message has none)
    {message_id}  our message id

Substitution happens on the parsed document, before it is serialised, so a text full of
quotes, backslashes or newlines stays valid JSON; and it is one pass, so a text that
itself contains "{to}" is sent as written. A string that is exactly "{sender}" becomes
null when there is no sender, which is how JSON APIs usually say "the account default".

The provider's id is read from the 2xx response at `id_path` ("messages.0.id").
Status codes are classified as in `http_common`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

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
    Provider,
    SmsCredentials,
    SmsSettings,
    options,
    url_address,
)
from tidings.net.ssrf import STRICT, OutboundPolicy

_PLACEHOLDER: Final = re.compile(r"\{(to|to_digits|text|sender|message_id)\}")
# Headers that describe the exchange rather than authorise it; every other header value
# is treated as a credential and kept out of reasons.
_PLAIN_HEADERS: Final = frozenset(
    {"accept", "accept-language", "content-language", "content-type", "user-agent"}
)
# Literal body values under keys like these are credentials too (some gateways take the
# API key in the body rather than a header).
_SECRET_KEY: Final = re.compile(r"key|token|secret|passw|auth|sign", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSmsSettings:
    """One gateway. `headers` come from the connection's write-only credentials."""

    url: str
    # Out of repr, like the headers: a gateway may take its key in the body.
    body: Mapping[str, Any] = field(repr=False)
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    id_path: str | None = None


class HttpSmsChannel(HttpChannel):
    """Sends each message as its own request, up to `max_concurrency` at a time.

    Without `id_path` the provider id is "http-<message id>". With one, a 2xx response
    that has no usable id there is a PermanentSendError rather than a retry: the gateway
    said it accepted the message, and sending it again would send it twice.
    """

    # Capabilities (see `Channel`): one request per message, `max_concurrency` at a time.
    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(
        self,
        settings: HttpSmsSettings,
        *,
        client: httpx.AsyncClient | None = None,
        max_concurrency: int = 10,
        policy: OutboundPolicy = STRICT,
    ) -> None:
        super().__init__(client=client, max_concurrency=max_concurrency, policy=policy)
        self.settings = settings
        self._secrets = tuple(_secrets(settings))

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One Result per message, in order; failures are results, never raised."""
        return await each_limited(batch, self._send_one, limit=self._limit)

    async def _send_one(self, message: Outgoing) -> Result:
        body = render_body(self.settings.body, placeholders(message))
        try:
            response = await self.client.request(
                self.settings.method,
                self.settings.url,
                json=body,
                headers=dict(self.settings.headers),
            )
        except REQUEST_ERRORS as exc:
            return transport_error(exc, secrets=self._secrets)
        error = status_error(response, secrets=self._secrets)
        if error is not None:
            return error
        if self.settings.id_path is None:
            return Sent(f"http-{message.message_id}")
        provider_id = _usable_id(dig(json_body(response), self.settings.id_path))
        if provider_id is None:
            return PermanentSendError(
                f"HTTP {response.status_code} but no id at {self.settings.id_path!r}; "
                "not retried, as the gateway may have sent it"
            )
        return Sent(provider_id)


def placeholders(message: Outgoing) -> dict[str, str | None]:
    """The placeholder values for one message."""
    return {
        "to": message.recipient,
        "to_digits": message.recipient.removeprefix("+"),
        "text": sms_text(message),
        "sender": message.sender,
        "message_id": str(message.message_id),
    }


def render_body(template: Any, values: Mapping[str, str | None]) -> Any:
    """`template` with placeholders in its string values filled from `values`.

    Keys, numbers, booleans and null are copied as they are; lists and objects are
    walked. A string that is exactly one placeholder whose value is None becomes None.
    """
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None and values[whole.group(1)] is None:
            return None
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", template)
    if isinstance(template, Mapping):
        return {key: render_body(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [render_body(item, values) for item in template]
    return template


def _usable_id(value: Any) -> str | None:
    # A string or a number; true/false, objects and empty strings are not ids.
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _secrets(settings: HttpSmsSettings) -> Iterator[str]:
    for name, value in settings.headers.items():
        if name.lower() in _PLAIN_HEADERS:
            continue
        yield value
        # "Bearer abc", "Basic abc": the credential alone may be echoed without its scheme.
        _, _, credential = value.partition(" ")
        yield credential.strip()
    yield from _literal_secrets(settings.body)


def _literal_secrets(template: Any, key: str = "") -> Iterator[str]:
    if isinstance(template, str):
        if _SECRET_KEY.search(key) and not _PLACEHOLDER.search(template):
            yield template
    elif isinstance(template, Mapping):
        for name, value in template.items():
            yield from _literal_secrets(value, str(name))
    elif isinstance(template, list):
        for item in template:
            yield from _literal_secrets(item, key)


# ── the connection kind (see channels/provider.py) ──────────────────────────────────


class HttpSmsSettingsIn(SmsSettings):
    # Many gateways take their key in the body: the body template is a credential.
    secret: ClassVar[frozenset[str]] = frozenset({"body"})

    url: HttpUrl
    method: Literal["POST", "PUT"] = "POST"
    body: dict[str, Any] = Field(
        description=(
            "JSON body; strings may hold {to}, {to_digits}, {text}, {sender}, {message_id}. "
            "Write-only: it may carry the gateway's key"
        )
    )
    id_path: str | None = Field(default=None, description="Dotted path of the provider's id")


class HttpSmsCredentials(SmsCredentials):
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization")


PROVIDER = Provider(
    kind="http_sms",
    channels=frozenset({"sms"}),
    settings=HttpSmsSettingsIn,
    credentials=HttpSmsCredentials,
    build=lambda spec, db: HttpSmsChannel(
        HttpSmsSettings(**options(spec)),
        max_concurrency=spec.max_concurrency,
        policy=db.settings.outbound_policy,
    ),
    addresses=lambda s: [url_address("url", s.url)],
)
