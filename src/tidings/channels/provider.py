"""What a provider module declares, so that adding a provider is one channel file.

Each channel module (`channels/<kind>.py`) ends with its `PROVIDER`: the connection kind,
the channels it sends (email, sms), the schemas of a connection's settings (readable
back through the API) and credentials (write-only), and how to build its channel from a
stored connection, and `addresses`: every place a connection makes Tidings connect to, by
the settings field that names it, which `connections/kinds.py` vets against the
operator's outbound policy when the connection is saved (the channel vets it again when
it connects). `channels/registry.py` lists the modules; `connections/kinds.py`
validates a connection against its kind's schemas; the dispatcher builds channels
through the registry. See docs/providers.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

from pydantic import AnyUrl, BaseModel, ConfigDict, Field

from tidings.channels.base import Channel
from tidings.db.engine import Database


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """What building a channel needs from a `connections` row (None id: the built-in sink)."""

    id: int | None
    kind: str
    settings: dict[str, Any]
    credentials: dict[str, Any]
    max_concurrency: int
    updated_at: datetime | None
    max_per_second: float | None = None


class Schema(BaseModel):
    """A connection's settings or credentials as stored: unknown fields are refused.

    `secret` names the settings that may hold a credential (a gateway's body template
    that carries its API key): they are written with the settings, and stored, sealed and
    hidden with the credentials (`connections/kinds.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    secret: ClassVar[frozenset[str]] = frozenset()


class NoSettings(Schema):
    pass


class SmsSettings(Schema):
    """What every SMS connection's settings hold: how long a text it may carry.

    A gateway sends a text of more segments than it allows cut short, or not at all,
    and may say it was sent (Kannel sends its first `max-messages` parts and answers
    202), so the dispatcher fails a longer text before handing it over
    (`dispatcher/renderer.py`)."""

    max_segments: int = Field(
        default=10,
        ge=1,
        le=255,  # a concatenated SMS numbers its parts in one octet
        description=(
            "The most segments (concatenated SMS parts) one text may take on this "
            "connection: longer texts fail before sending. Set it to the gateway's limit "
            "(Kannel: its sendsms-user max-messages, 10 by default)"
        ),
    )


class SmsCredentials(Schema):
    """What every SMS connection may hold to authenticate what comes back to it."""

    inbound_token: str | None = Field(
        default=None,
        min_length=24,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Secret of the inbound SMS URL /inbound/sms/{connection_id}/{inbound_token} "
            "and of the report URLs /reports/{connection_id}/kannel|infobip/{inbound_token} "
            "that Tidings gives the provider itself (generated for Kannel when not set)"
        ),
    )
    report_secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$",
        description="Standard Webhooks secret of generic reports to /reports/{connection_id}/json",
    )


Builder = Callable[[ConnectionSpec, Database], Channel]
"""A live channel from a stored connection (the database: for the sink, and for
settings such as the public URL and the outbound policy)."""


@dataclass(frozen=True, slots=True)
class Address:
    """A host and port a connection makes Tidings connect to, and the settings field that
    names it (`url`, `bounce_imap.host`), for a refusal to name."""

    field: str
    host: str
    port: int


def url_address(field: str, url: AnyUrl) -> Address:
    """The host and port of a validated http(s) URL setting."""
    assert url.host is not None  # HttpUrl requires a host,
    assert url.port is not None  # and gives the scheme's port when the URL has none
    return Address(field, url.host, url.port)


def no_addresses(settings: Any) -> Sequence[Address]:
    return ()


@dataclass(frozen=True, slots=True)
class Provider:
    """One connection kind: `settings` and `credentials` validate what a connection
    stores (`connections/kinds.py`); `build` makes its channel (`options` gives the two
    merged, without what only authenticates inbound traffic); `addresses` says where the
    settings make Tidings connect. `generated` names the credentials Tidings makes itself
    when a connection has none (random URL tokens)."""

    kind: str
    channels: frozenset[str]
    settings: type[Schema]
    credentials: type[Schema]
    build: Builder
    generated: tuple[str, ...] = ()
    addresses: Callable[[Any], Sequence[Address]] = no_addresses
    """The `Address`es of validated settings (an instance of `settings`)."""


DISPATCHER_SETTINGS: Final = ("max_segments",)
"""Settings the dispatcher applies itself, not the channel (`SmsSettings`)."""

INBOUND: Final = (
    "inbound_token",
    "report_secret",
    "bounce_token",
    "bounce_imap",
    "bounce_imap_password",
)
"""Settings and credentials that authenticate or fetch what comes back to us (inbound
SMS, delivery reports, bounces), not sending."""


def report_url(spec: ConnectionSpec, public_url: str, route: str) -> str | None:
    """The connection's own delivery-report URL of `route` (`kannel`, `infobip`), which
    Tidings gives the provider with each message; None without an `inbound_token` (a
    report there could not be authenticated). It holds the token: never log it."""
    token = spec.credentials.get("inbound_token")
    if spec.id is None or not isinstance(token, str) or not token:
        return None
    return f"{public_url.rstrip('/')}/reports/{spec.id}/{route}/{token}"


def options(spec: ConnectionSpec) -> dict[str, Any]:
    """A connection's settings and credentials merged, as keyword arguments of its
    channel's settings: without the inbound ones and the dispatcher's, URLs without their
    trailing slash."""
    merged = {**spec.settings, **spec.credentials}
    for name in (*INBOUND, *DISPATCHER_SETTINGS):
        merged.pop(name, None)
    for name in ("base_url",):  # validated URLs come back with a trailing slash
        if isinstance(merged.get(name), str):
            merged[name] = merged[name].rstrip("/")
    return merged
