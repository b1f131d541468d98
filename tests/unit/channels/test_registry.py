"""From a stored connection's settings to a channel: defaults filled in, every setting
reaching the channel."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace
from typing import cast

from tidings.channels.base import Outgoing
from tidings.channels.http_sms import HttpSmsChannel
from tidings.channels.infobip import InfobipChannel
from tidings.channels.kannel import KannelChannel
from tidings.channels.registry import PROVIDERS, ConnectionSpec, build_channel
from tidings.channels.smtp import SmtpChannel, SmtpSettings
from tidings.connections.kinds import as_written, validated
from tidings.db.engine import Database
from tidings.settings import Settings


def _db() -> Database:
    """What building a channel reads of the database: its settings (the outbound policy)."""
    return cast(Database, SimpleNamespace(settings=Settings()))


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

    channel = build_channel(spec, _db())

    assert isinstance(channel, SmtpChannel)
    assert channel.settings == SmtpSettings(
        "mx.example", username="u", password="p", pipelining=False, pushback_seconds=5.0
    )


def test_a_connection_stored_before_pipelining_existed_gets_the_defaults() -> None:
    spec = ConnectionSpec(1, "smtp", {"host": "mx.example", "port": 25}, {}, 10, None)
    channel = build_channel(spec, _db())
    assert isinstance(channel, SmtpChannel)
    assert (channel.settings.pipelining, channel.settings.pushback_seconds) == (True, 60.0)


def test_report_secrets_and_tokens_stay_out_of_the_channels() -> None:
    """What authenticates reports coming back is not a sending option: a connection that
    has one still builds its channel."""
    secret = "whsec_" + "a" * 44
    cases = {
        "smtp": ("email", {"host": "mx.example"}, {"report_secret": secret}),
        "kannel": ("sms", {"base_url": "http://kannel.test"},
                   {"username": "u", "password": "p", "report_secret": secret}),
        "twilio": ("sms", {"account_sid": "AC" + "0" * 32},
                   {"auth_token": "t", "report_secret": secret}),
    }  # fmt: skip
    db = cast(Database, SimpleNamespace(settings=Settings(public_url="https://tidings.example")))
    for kind, (channel_name, raw_settings, raw_credentials) in cases.items():
        settings, credentials = validated(kind, channel_name, raw_settings, raw_credentials)
        spec = ConnectionSpec(1, kind, settings, credentials, 10, None)
        channel = build_channel(spec, db)  # raised TypeError before
        assert type(channel).__name__.lower() == f"{kind}channel"


def test_kannel_asks_for_reports_at_a_url_tidings_builds_with_a_token_it_made() -> None:
    """The operator types no token and no URL: the token is generated once, kept by a
    change that does not name it, and never shown in the readable settings."""
    settings, credentials = validated(
        "kannel", "sms", {"base_url": "http://kannel.test"}, {"username": "u", "password": "p"}
    )
    token = credentials["inbound_token"]
    assert len(token) >= 24
    assert token not in str(settings)
    db = cast(Database, SimpleNamespace(settings=Settings(public_url="https://tidings.example/")))
    channel = build_channel(ConnectionSpec(9, "kannel", settings, credentials, 10, None), db)
    assert isinstance(channel, KannelChannel)
    query = channel.query(Outgoing(42, 1, "sms", None, "+41793026727", None, "Hi"))
    assert query["dlr-url"] == (
        f"https://tidings.example/reports/9/kannel/{token}"
        "?message_id=42&type=%d&smsc-id=%i&reply=%A&ts=%T"
    )
    assert query["dlr-mask"] == "31"
    assert repr(channel.settings).count(token) == 0

    changed = validated(
        "kannel", "sms", settings, {"username": "u", "password": "new"}, stored=credentials
    )
    assert changed[1]["inbound_token"] == token
    fresh = validated("kannel", "sms", settings, {"username": "u", "password": "new"})
    assert fresh[1]["inbound_token"] != token

    off, quiet = validated(
        "kannel", "sms", {"base_url": "http://k.test", "delivery_reports": False},
        {"username": "u", "password": "p"},
    )  # fmt: skip
    silent = build_channel(ConnectionSpec(9, "kannel", off, quiet, 10, None), db)
    assert isinstance(silent, KannelChannel)
    assert "dlr-url" not in silent.query(Outgoing(42, 1, "sms", None, "+41793026727", None, "Hi"))


def test_an_http_sms_body_is_a_credential() -> None:
    """A gateway that takes its key in the body: the body is stored with the credentials
    (hidden, sealed), written and changed with the settings."""
    body = {"to": "{to}", "text": "{text}", "api_key": "key-in-the-body"}
    settings, credentials = validated(
        "http_sms", "sms", {"url": "https://gw.example/send", "body": body}, {}
    )
    assert "body" not in settings
    assert credentials["body"] == body
    assert as_written("http_sms", settings, credentials) == (
        {**settings, "body": body}, {k: v for k, v in credentials.items() if k != "body"}
    )  # fmt: skip
    spec = ConnectionSpec(3, "http_sms", settings, credentials, 10, None)
    channel = build_channel(spec, _db())
    assert isinstance(channel, HttpSmsChannel)
    assert channel.settings.body == body


def test_infobip_asks_for_reports_at_its_own_report_url() -> None:
    settings, credentials = validated(
        "infobip",
        "sms",
        {"base_url": "https://xyz.api.infobip.com"},
        {"api_key": "k", "inbound_token": "t" * 24, "report_secret": "whsec_" + "a" * 44},
    )
    db = cast(Database, SimpleNamespace(settings=Settings(public_url="https://tidings.example/")))
    channel = build_channel(ConnectionSpec(7, "infobip", settings, credentials, 10, None), db)
    assert isinstance(channel, InfobipChannel)
    expected = "https://tidings.example/reports/7/infobip/" + "t" * 24
    assert channel.settings.notify_url == expected
    outgoing = Outgoing(1, 1, "sms", "Acme", "+41793026727", None, "Hi")
    (message,) = json.loads(channel.payload([outgoing]))["messages"]
    assert (message["notifyUrl"], message["notifyContentType"]) == (expected, "application/json")

    del credentials["inbound_token"]
    channel = build_channel(ConnectionSpec(7, "infobip", settings, credentials, 10, None), db)
    assert isinstance(channel, InfobipChannel)
    assert channel.settings.notify_url is None
    assert "notifyUrl" not in json.loads(channel.payload([outgoing]))["messages"][0]


def test_each_kind_is_declared_by_its_own_channel_module() -> None:
    """docs/providers.md: a provider is `channels/<kind>.py` ending with its PROVIDER."""
    assert {"sink", "smtp"} <= set(PROVIDERS)
    for kind, provider in PROVIDERS.items():
        assert importlib.import_module(f"tidings.channels.{kind}").PROVIDER is provider
        assert provider.channels <= {"email", "sms"}
