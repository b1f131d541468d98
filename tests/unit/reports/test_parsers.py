"""Report parsers and signatures: pure, no I/O."""

from __future__ import annotations

import json

import pytest

from tidings.connections.service import token_matches
from tidings.reports import parsers
from tidings.webhooks import signing

TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_twilio_signature_matches_twilios_documented_example() -> None:
    assert parsers.twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    urls = ["https://other.example/", TWILIO_URL]
    assert parsers.twilio_valid("12345", urls, TWILIO_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    tampered = TWILIO_PARAMS | {"Digits": "1235"}
    assert not parsers.twilio_valid("12345", urls, tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_standard_signature_accepts_any_listed_v1() -> None:
    secret = signing.generate_secret()
    good = signing.sign(secret, msg_id="m", timestamp=1, body=b"{}")
    assert parsers.standard_valid(secret, msg_id="m", timestamp=1, body=b"{}", given=f"v1,x {good}")
    assert not parsers.standard_valid(secret, msg_id="m", timestamp=2, body=b"{}", given=good)
    assert not parsers.standard_valid(secret, msg_id="m", timestamp=1, body=b"[]", given=good)


def test_token_matches_only_a_set_equal_token() -> None:
    assert token_matches("a" * 24, "a" * 24)
    assert not token_matches("a" * 24, "a" * 23 + "b")
    assert not token_matches(None, "")


@pytest.mark.parametrize(
    ("kind", "event"), [("1", "delivered"), ("2", "bounced"), ("16", "bounced"), ("8", None)]
)
def test_kannel_types(kind: str, event: str | None) -> None:
    (report,) = parsers.kannel({"message_id": "42", "type": kind, "ts": "1795312800"})
    assert (report.type, report.message_id) == (event, 42)
    assert report.occurred_at is not None


@pytest.mark.parametrize("query", [{"type": "1"}, {"message_id": "x", "type": "1"},
                                   {"message_id": "1", "type": "3"}])  # fmt: skip
def test_kannel_malformed(query: dict[str, str]) -> None:
    with pytest.raises(parsers.Malformed):
        parsers.kannel(query)


def test_infobip_groups_and_time() -> None:
    body = {
        "results": [
            {"messageId": "7", "doneAt": "2026-11-22T04:00:05.000+0000",
             "status": {"groupName": "EXPIRED", "name": "EXPIRED_EXPIRED"},
             "error": {"name": "EC_ABSENT_SUBSCRIBER"}},
            {"messageId": "8", "status": {"groupName": "PENDING"}},
        ]
    }  # fmt: skip
    expired, pending = parsers.infobip(json.dumps(body).encode())
    assert (expired.type, expired.provider_id, expired.data["error"]) == (
        "bounced", "7", "EC_ABSENT_SUBSCRIBER",
    )  # fmt: skip
    assert expired.occurred_at is not None
    assert expired.occurred_at.isoformat() == "2026-11-22T04:00:05+00:00"
    assert pending.type is None
    with pytest.raises(parsers.Malformed):
        parsers.infobip(b'{"results": [{"messageId": "7", "status": {"groupName": "NEW"}}]}')


def test_twilio_statuses() -> None:
    (report,) = parsers.twilio({"MessageSid": "SM1", "MessageStatus": "undelivered",
                                "ErrorCode": "30003"})  # fmt: skip
    assert (report.type, report.provider_id, report.data) == (
        "bounced", "SM1", {"status": "undelivered", "error": "30003"},
    )  # fmt: skip
    assert parsers.twilio({"MessageSid": "SM1", "MessageStatus": "sent"})[0].type is None


def test_generic_requires_id_type_and_a_message() -> None:
    (report,) = parsers.generic(
        b'{"reports": [{"id": "r", "provider_id": "p", "type": "bounced", "permanent": true}]}'
    )
    assert (report.key, report.provider_id, report.permanent) == ("r", "p", True)
    for bad in ({"id": "r", "type": "bounced"}, {"id": "r", "message_id": 1, "type": "opened"},
                {"message_id": 1, "type": "delivered"}):  # fmt: skip
        with pytest.raises(parsers.Malformed):
            parsers.generic(json.dumps({"reports": [bad]}).encode())
