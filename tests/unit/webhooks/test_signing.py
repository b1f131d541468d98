"""Our signatures checked by a verifier written from the Standard Webhooks spec here, not
from our code (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from tidings.webhooks import signing


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: int = 300) -> bool:
    """The spec's verification: strip `whsec_`, base64-decode the key, HMAC-SHA256 the
    string `{webhook-id}.{webhook-timestamp}.{body}`, compare in constant time with any
    space-separated `v1,` signature; refuse timestamps outside the tolerance."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    to_sign = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def test_a_fresh_secret_has_the_standard_shape() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert secret != signing.generate_secret()


def test_signature_verifies_independently() -> None:
    secret = signing.generate_secret()
    body = b'{"type":"delivered","data":{"message_id":7}}'
    now = int(time.time())
    headers = signing.headers(secret, msg_id="msg_42", timestamp=now, body=body)
    assert headers["webhook-id"] == "msg_42"
    assert headers["webhook-timestamp"] == str(now)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(signing.generate_secret(), headers, body)
    assert not verify(secret, {**headers, "webhook-id": "msg_43"}, body)


def test_the_specs_own_example() -> None:
    """The worked example of the Standard Webhooks spec (and its reference libraries)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = signing.headers(
        secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
