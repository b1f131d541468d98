"""From a stored connection to a live channel: the provider modules, by kind.

Each module declares its kind (`PROVIDER`, see `channels/provider.py`); this list is the
one place that names them all. A new provider is one more module here.
"""

from __future__ import annotations

from tidings.channels import http_sms, infobip, kannel, sink, smtp, twilio
from tidings.channels.base import Channel
from tidings.channels.provider import ConnectionSpec, Provider, SmsSettings
from tidings.db.engine import Database

__all__ = ["PROVIDERS", "SINK", "ConnectionSpec", "build_channel", "max_segments"]

PROVIDERS: dict[str, Provider] = {
    provider.kind: provider
    for provider in (
        sink.PROVIDER,
        smtp.PROVIDER,
        http_sms.PROVIDER,
        kannel.PROVIDER,
        infobip.PROVIDER,
        twilio.PROVIDER,
    )
}
"""Every connection kind, in the order the API lists them."""

SINK = ConnectionSpec(None, "sink", {}, {}, 1, None)


def build_channel(spec: ConnectionSpec, db: Database) -> Channel:
    return PROVIDERS[spec.kind].build(spec, db)


def max_segments(spec: ConnectionSpec) -> int | None:
    """The most segments one text may take on an SMS connection: its `max_segments`, else
    its kind's default (`SmsSettings`); None where nothing limits it (email, the sink)."""
    settings = PROVIDERS[spec.kind].settings
    if not issubclass(settings, SmsSettings):
        return None
    stored = spec.settings.get("max_segments")
    if isinstance(stored, int):
        return stored
    default = settings.model_fields["max_segments"].default
    return int(default)
