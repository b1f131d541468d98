"""From a stored connection to a live channel: the provider modules, by kind.

Each module declares its kind (`PROVIDER`, see `channels/provider.py`); this list is the
one place that names them all. A new provider is one more module here.
"""

from __future__ import annotations

from tidings.channels import http_sms, infobip, kannel, sink, smtp, twilio
from tidings.channels.base import Channel
from tidings.channels.provider import ConnectionSpec, Provider
from tidings.db.engine import Database

__all__ = ["PROVIDERS", "SINK", "ConnectionSpec", "build_channel"]

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
