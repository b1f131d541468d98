"""From a stored connection to a live channel: one entry per provider kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tidings.channels.base import Channel
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.channels.infobip import InfobipChannel, InfobipSettings
from tidings.channels.kannel import KannelChannel, KannelSettings
from tidings.channels.sink import SinkChannel
from tidings.channels.smtp import SmtpChannel, SmtpSettings
from tidings.channels.twilio import TwilioChannel, TwilioSettings
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


SINK = ConnectionSpec(None, "sink", {}, {}, 1, None)


_INBOUND: Final = (
    "inbound_token",
    "report_secret",
    "bounce_token",
    "bounce_imap",
    "bounce_imap_password",
)
"""Settings and credentials that authenticate or fetch what comes back to us (inbound
SMS, delivery reports, bounces), not sending."""


def _options(spec: ConnectionSpec) -> dict[str, Any]:
    merged = {**spec.settings, **spec.credentials}
    for name in _INBOUND:
        merged.pop(name, None)
    for name in ("base_url",):  # validated URLs come back with a trailing slash
        if isinstance(merged.get(name), str):
            merged[name] = merged[name].rstrip("/")
    return merged


def infobip_notify_url(spec: ConnectionSpec, public_url: str) -> str | None:
    """The connection's own Infobip report URL (see docs/reports.md), which Tidings asks
    Infobip to post each message's delivery report to; None without an `inbound_token`
    (a report there could not be authenticated)."""
    token = spec.credentials.get("inbound_token")
    if spec.id is None or not isinstance(token, str) or not token:
        return None
    return f"{public_url.rstrip('/')}/reports/{spec.id}/infobip/{token}"


Builder = Callable[[ConnectionSpec, Database], Channel]

BUILDERS: dict[str, Builder] = {
    "sink": lambda spec, db: SinkChannel(db),
    "smtp": lambda spec, db: SmtpChannel(SmtpSettings(**_options(spec))),
    "http_sms": lambda spec, db: HttpSmsChannel(
        HttpSmsSettings(**_options(spec)), max_concurrency=spec.max_concurrency
    ),
    "kannel": lambda spec, db: KannelChannel(
        KannelSettings(**_options(spec)), max_concurrency=spec.max_concurrency
    ),
    "infobip": lambda spec, db: InfobipChannel(
        InfobipSettings(
            **_options(spec), notify_url=infobip_notify_url(spec, db.settings.public_url)
        ),
        max_concurrency=spec.max_concurrency,
    ),
    "twilio": lambda spec, db: TwilioChannel(
        TwilioSettings(**_options(spec)), max_concurrency=spec.max_concurrency
    ),
}


def build_channel(spec: ConnectionSpec, db: Database) -> Channel:
    return BUILDERS[spec.kind](spec, db)
