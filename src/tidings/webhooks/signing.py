"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A delivery carries three headers: `webhook-id` (stable across retries, `msg_<delivery
id>`), `webhook-timestamp` (integer Unix seconds of this attempt) and `webhook-signature`
(`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`), where the key is the
base64-decoded part of the endpoint's secret after `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(delivery_id: int) -> str:
    return f"msg_{delivery_id}"


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body),
        "content-type": "application/json",
    }
