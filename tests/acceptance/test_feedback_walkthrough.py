"""Issue 5's "done when", the way an operator sees it: `tidings serve --bootstrap` (what
`make run` starts) in a real process, driven over HTTP only.

A tracked marketing broadcast goes to four people through a sink connection. Then, as
people and providers would: one opens and clicks, one opens, one unsubscribes (after the
bot rule's first seconds), a signed delivery report says one arrived and another bounced
hard, a forged report is refused. The broadcast's counters, its seed 002 object, its
stats, the messages' states and the suppression list all follow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import quopri
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tidings.db.engine import Database
from tidings.events.bots import TOO_SOON
from tidings.settings import Settings

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PEOPLE = ("ada", "grace", "alan", "linus")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(settings: Settings, db: Database, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`tidings serve --bootstrap` on the test's database: its URL and the printed key."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": settings.database_url,
        "TIDINGS_AUTO_MIGRATE": "false",
        "TIDINGS_PUBLIC_URL": base,
        "TIDINGS_SECRET_KEY": "walkthrough-secret-key-of-at-least-32-characters",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", "--bootstrap", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # uvicorn says "startup complete" before it listens; "running on" once it does.
        while "Uvicorn running on" not in (printed := log.read_text()):
            assert server.poll() is None, printed
            assert time.monotonic() < deadline, printed
            time.sleep(0.1)
        key = re.search(r"API key\s+(tdg_live_[A-Za-z0-9_-]+)", printed)
        assert key is not None, f"serve --bootstrap printed no key:\n{printed}"
        yield base, key.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ok(response: httpx.Response) -> dict:  # type: ignore[type-arg]
    assert response.status_code < 300, response.text
    return response.json()  # type: ignore[no-any-return]


def _counters(api: httpx.Client, broadcast_id: int) -> dict[str, int]:
    found = _ok(api.get(f"/v1/orgs/1/broadcasts/{broadcast_id}"))
    return {name: value for name, value in found.items() if name.endswith("_count")}


def _signed_report(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, computed here from the spec, not with Tidings' code."""
    webhook_id, timestamp = f"msg_{secrets.token_hex(8)}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{signature}",
        "content-type": "application/json",
    }


def test_a_tracked_broadcast_through_serve_shows_its_feedback(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base, key = served
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api,
        httpx.Client(base_url=base, headers={"User-Agent": BROWSER}, timeout=30) as people,
    ):
        _walk_through(base, api, people)
    # The process logs each provider call, timed, at TIDINGS_LOG_LEVEL's default (info).
    logged = (tmp_path / "serve.log").read_text()
    assert re.search(
        r"INFO tidings\.dispatcher\.deliverer: provider call: connection 1 \(sink\), "
        r"\d+ messages: \d+ sent, 0 failed, 0 unsent in \d+\.\d{3} s",
        logged,
    ), logged


def _walk_through(base: str, api: httpx.Client, people: httpx.Client) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    contacts = [{"email": f"{name}@example.com", "first_name": name.title()} for name in PEOPLE]
    _ok(api.post("/v1/orgs/1/contacts", json={"contacts": contacts}))
    connection = _ok(
        api.post(
            "/v1/orgs/1/connections",
            json={
                "name": "recorded",
                "channel": "email",
                "kind": "sink",
                "credentials": {"report_secret": secret},
                "is_default": True,
            },
        )
    )
    template = _ok(
        api.post(
            "/v1/orgs/1/templates",
            json={
                "name": "offer",
                "channel": "email",
                "subject": "Hi {{ first_name }}",
                "html": '<html><body><p>Hello {{ first_name }}, see the <a href="https://acme.example/offer">offer</a></p></body></html>',
                "text": "Hello {{ first_name }}, see https://acme.example/offer",
            },
        )
    )
    campaign = _ok(
        api.post(
            "/v1/orgs/1/campaigns",
            json={
                "name": "offer",
                "channel": "email",
                "template_id": template["id"],
                "from_email": "news@acme.example",
                "purpose": "marketing",
                "track_clicks": True,
                "track_opens": True,
            },
        )
    )
    broadcast = _ok(
        api.post(
            "/v1/orgs/1/broadcasts",
            json={"name": "offer", "campaign_id": campaign["id"], "send_to_all": True},
        )
    )
    deadline = time.monotonic() + 60
    while _ok(api.get(f"/v1/orgs/1/broadcasts/{broadcast['id']}"))["status"] != "SENT":
        assert time.monotonic() < deadline, "the broadcast was not sent within 60 s"
        time.sleep(0.2)
    assert _counters(api, broadcast["id"]) | {"sent_count": 4} == _counters(api, broadcast["id"])

    sunk = _ok(api.get("/v1/orgs/1/sink/messages"))["data"]
    mail = {
        entry["recipient"].split("@")[0]: (
            entry["message_id"],
            quopri.decodestring(entry["content"].encode()).decode(),
        )
        for entry in sunk
    }
    assert sorted(mail) == sorted(PEOPLE)

    def link(name: str, kind: str) -> str:
        found = re.findall(rf"{re.escape(base)}(/{kind}/[A-Za-z0-9._~-]+)", mail[name][1])
        assert found, f"no /{kind}/ link in {name}'s message"
        return str(found[0])

    time.sleep(TOO_SOON.total_seconds() + 0.5)  # people are slower than mail scanners
    assert people.get(link("ada", "o")).status_code == 200
    clicked = people.get(link("ada", "l"))
    assert (clicked.status_code, clicked.headers["location"]) == (302, "https://acme.example/offer")
    assert people.get(link("ada", "l")).status_code == 302  # a second click counts once
    assert people.get(link("grace", "o")).status_code == 200
    assert people.post(link("alan", "u")).status_code == 200
    assert people.head(link("linus", "o")).status_code == 200  # a scanner's probe
    assert _counters(api, broadcast["id"]) | {
        "opened_count": 2,
        "clicked_count": 1,
        "unsubscribed_count": 1,
    } == _counters(api, broadcast["id"])

    reports = {
        "reports": [
            {"id": "relay-1", "message_id": mail["ada"][0], "type": "delivered"},
            {
                "id": "relay-2",
                "message_id": mail["grace"][0],
                "type": "bounced",
                "permanent": True,
                "reason": "550 5.1.1 no such user",
            },
        ]
    }
    body = json.dumps(reports).encode()
    path = f"/reports/{connection['id']}/json"
    answer = httpx.post(f"{base}{path}", content=body, headers=_signed_report(secret, body))
    assert answer.json() == {"accepted": 2, "stale": 0, "pending": 0}
    forged = _signed_report("whsec_" + base64.b64encode(b"x" * 24).decode(), body)
    assert httpx.post(f"{base}{path}", content=body, headers=forged).status_code == 403

    counters = _counters(api, broadcast["id"])
    assert counters == {
        "contacts_count": 4,
        "recipients_count": 4,
        "skipped_count": 0,
        "sent_count": 4,
        "failed_count": 1,
        "delivered_count": 1,
        "opened_count": 2,
        "clicked_count": 1,
        "played_count": 0,
        "complained_count": 0,
        "unsubscribed_count": 1,
        "fallback_count": 0,  # messages sent on the other channel instead
        "scheduled_later_count": 0,  # messages due later (local time, quiet hours)
    }
    seed_002 = _ok(api.get(f"/compat/invent/orgs/1/broadcasts/{broadcast['id']}"))
    renamed = {"clicked_count": "click_count"}  # seed 002's name
    native_only = {"fallback_count", "scheduled_later_count"}  # not in seed 002's object
    assert {name: seed_002[name] for name in seed_002 if name.endswith("_count")} == {
        renamed.get(name, name): value
        for name, value in counters.items()
        if name not in native_only
    }
    stats = _ok(api.get(f"/v1/orgs/1/broadcasts/{broadcast['id']}/stats"))
    assert stats["counters"]["bounced"] == 1
    assert stats["rates"]["delivery"] == 0.25
    states = {
        message["id"]: message["status"]
        for message in _ok(
            api.get("/v1/orgs/1/messages", params={"broadcast_id": broadcast["id"]})
        )["data"]
    }
    assert states[mail["ada"][0]] == "delivered"
    assert states[mail["grace"][0]] == "bounced"
    suppressed = _ok(api.get("/v1/orgs/1/suppressions"))["data"]
    assert [(s["address"], s["reason"]) for s in suppressed] == [
        ("grace@example.com", "hard_bounce")
    ]
    rejected = _ok(api.get("/v1/orgs/1/reports/rejected"))
    assert rejected["total"] == 1
