"""From a stored connection's settings to a channel: defaults filled in, every setting
reaching the channel."""

from __future__ import annotations

from typing import cast

from tidings.channels.registry import ConnectionSpec, build_channel
from tidings.channels.smtp import SmtpChannel, SmtpSettings
from tidings.connections.kinds import validated
from tidings.db.engine import Database


def test_smtp_settings_are_stored_with_their_defaults() -> None:
    settings, credentials = validated("smtp", "email", {"host": "mx.example"}, {})
    assert settings == {
        "host": "mx.example",
        "port": 587,
        "security": "starttls",
        "pool_size": 4,
        "timeout": 30.0,
        "validate_certs": True,
        "pipelining": True,
        "pushback_seconds": 60.0,
    }
    assert credentials == {}


def test_stored_smtp_settings_reach_the_channel() -> None:
    settings, credentials = validated(
        "smtp",
        "email",
        {"host": "mx.example", "pipelining": False, "pushback_seconds": 5},
        {"username": "u", "password": "p"},
    )
    spec = ConnectionSpec(1, "smtp", settings, credentials, max_concurrency=10, updated_at=None)

    channel = build_channel(spec, cast(Database, None))  # an SMTP channel needs no database

    assert isinstance(channel, SmtpChannel)
    assert channel.settings == SmtpSettings(
        "mx.example", username="u", password="p", pipelining=False, pushback_seconds=5.0
    )


def test_a_connection_stored_before_pipelining_existed_gets_the_defaults() -> None:
    spec = ConnectionSpec(1, "smtp", {"host": "mx.example", "port": 25}, {}, 10, None)
    channel = build_channel(spec, cast(Database, None))
    assert isinstance(channel, SmtpChannel)
    assert (channel.settings.pipelining, channel.settings.pushback_seconds) == (True, 60.0)
