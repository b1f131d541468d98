"""Fakes for testing Tidings and what is built on it: product code, kept typed and tested
like the rest (tests/unit/test_testing.py), importable without side effects.

    Clock              time that moves only when the test moves it      clock.py
    RecordingChannel   a Channel that records and answers per a rule    channel.py
    Gateway            a provider's HTTP API: a loopback server, or an  gateway.py
                       httpx transport, answering per a plan
    *_ok               each SMS provider's answer to a good send        providers.py
"""

from tidings.testing.channel import RecordingChannel, Rule, answers, raising, sent
from tidings.testing.clock import Clock
from tidings.testing.gateway import Gateway, Plan, Recorded, Reply
from tidings.testing.providers import (
    INFOBIP_PENDING,
    INFOBIP_REJECTED,
    http_sms_ok,
    infobip_ok,
    kannel_ok,
    twilio_ok,
)

__all__ = [
    "INFOBIP_PENDING",
    "INFOBIP_REJECTED",
    "Clock",
    "Gateway",
    "Plan",
    "Recorded",
    "RecordingChannel",
    "Reply",
    "Rule",
    "answers",
    "http_sms_ok",
    "infobip_ok",
    "kannel_ok",
    "raising",
    "sent",
    "twilio_ok",
]
