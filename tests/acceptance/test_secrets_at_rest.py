"""No secret readable through the API, the database or the logs (issue 14, item 2).

A full run on a real server (uvicorn on loopback, its access log as `tidings serve`
configures it): connections of every kind with credentials, a webhook, SMS sent through
four gateways (on loopback), delivery reports received on the URLs Tidings gave Kannel
and Infobip, a bounce posted to its tokenised URL, a credential changed. Then every
secret set, and the Kannel token Tidings generated, is looked for in every API answer
(but the one answer that shows a webhook secret once), the database (SQLite: the file
and its WAL, bytes; PostgreSQL: every column of every table as text) and every log line
(Tidings' own, at debug, and uvicorn's access and error logs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy import cast, select
from sqlalchemy.types import Text
from uvicorn.logging import AccessFormatter

from tests.acceptance.test_sms_broadcast import _drain
from tests.conftest import _Apps
from tests.support.factories import OrgWithKey, make_org, upsert
from tests.support.reports import dsn
from tidings.db.engine import Database
from tidings.runtime import adopt_uvicorn_logs
from tidings.schema import Base
from tidings.settings import Settings, sqlite_path
from tidings.testing import Gateway, Recorded, Reply
from tidings.testing.providers import http_sms_ok, infobip_ok, kannel_ok, twilio_ok

ACCOUNT = "AC" + "5" * 32
SECRETS = {
    "smtp password": "smtp-pass-S3cret-0a1b2c",
    "smtp bounce token": "bounceTokenS3cret0123456789",
    "smtp report secret": "whsec_" + "c2VjcmV0LXJlcG9ydC1zaWduaW5nLWtleS0xMjM0NTY=",
    "imap password": "imap-pass-S3cret-3d4e5f",
    "http_sms header": "httpsms-header-S3cret-6a7b",
    "http_sms body key": "httpsms-body-S3cret-8c9d",
    "kannel password": "kannel-pass-S3cret-0e1f",
    "infobip key": "infobip-key-S3cret-2a3b",
    "infobip token": "infobipInboundTokenS3cret0123",
    "twilio token": "twilio-auth-S3cret-4c5d",
    "new kannel password": "kannel-pass-S3cret-changed-6e7f",
}


def _gateway_plan(request: Recorded) -> Reply:
    if request.path == "/cgi-bin/sendsms":
        return kannel_ok(request)
    if request.path == "/send":
        return http_sms_ok(request)
    if request.path.startswith("/2010-04-01/"):
        return twilio_ok(request)
    return infobip_ok(request)


class Recording(logging.Handler):
    """Every formatted line of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
async def served(
    settings: Settings, db: Database, apps: _Apps
) -> AsyncIterator[tuple[str, Recording]]:
    """The app served by uvicorn on loopback as `tidings serve` runs it (access log on,
    redacted after uvicorn set its loggers up), and the lines of every log."""
    app = apps.for_settings(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info"))
    adopt_uvicorn_logs()
    recording = Recording()
    access = logging.getLogger("uvicorn.access")
    access_recording = Recording()
    access_recording.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    access.addHandler(access_recording)
    watched = [logging.getLogger(name) for name in ("tidings", "uvicorn.error")]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(recording)
        logger.setLevel(logging.DEBUG)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 — uvicorn's Server has no event for it
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", [recording, access_recording]
    finally:
        server.should_exit = True
        await task
        access.removeHandler(access_recording)
        for logger, level in zip(watched, levels, strict=True):
            logger.removeHandler(recording)
            logger.setLevel(level)


class Api:
    """The org's API over HTTP, keeping every answer."""

    def __init__(self, http: httpx.AsyncClient, org: OrgWithKey) -> None:
        self.http, self.org, self.answers = http, org, list[str]()
        self.webhook_secret = ""

    async def call(self, method: str, path: str, *, keep: bool = True, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, headers=self.org.bearer, **kwargs)
        assert response.status_code < 300, response.text
        if keep:
            self.answers.append(response.text)
        return response.json() if response.content else None


async def _database_text(settings: Settings, db: Database) -> str:
    """Everything the database holds, as text."""
    path = sqlite_path(settings.database_url)
    if path is not None:
        await db.dispose()  # checkpoint nothing away: read the file and its WAL as they are
        files = [path, Path(f"{path}-wal")]
        return "".join(p.read_bytes().decode("latin-1") for p in files if p.exists())
    chunks: list[str] = []
    async with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            columns = [cast(column, Text) for column in table.columns]
            for row in await session.execute(select(*columns)):
                chunks.append(" ".join(str(value) for value in row))
    return "\n".join(chunks)


async def test_no_secret_in_answers_database_or_logs(
    settings: Settings, db: Database, served: tuple[str, list[Recording]]
) -> None:
    url, recordings = served
    gateway = Gateway()
    await gateway.start()
    gateway.plan = _gateway_plan
    org = await make_org(db)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            api = Api(http, org)
            await _run(api, http, db, gateway, org)
            kannel_token = _kannel_token(gateway)
    finally:
        await gateway.stop()

    secrets = {**SECRETS, "kannel token": kannel_token, "webhook secret": api.webhook_secret}
    lines = [line for recording in recordings for line in recording.lines]
    assert len(lines) > 20
    stored = await _database_text(settings, db)
    for name, secret in secrets.items():
        assert secret not in stored, f"{name} found in the database"
        for answer in api.answers:
            assert secret not in answer, f"{name} found in an API answer"
        for line in lines:
            assert secret not in line, f"{name} found in a log line: {line}"
    assert any("/reports/" in line and "/kannel/***?message_id=" in line for line in lines)
    assert any("/reports/" in line and "/infobip/***" in line for line in lines)
    assert any("/bounces/" in line and "/*** HTTP/1.1" in line for line in lines)
    assert "enc:v0:" in stored  # sealed, not absent


def _kannel_token(gateway: Gateway) -> str:
    dlr = next(r.param("dlr-url") for r in gateway.requests if r.path == "/cgi-bin/sendsms")
    return urlsplit(dlr).path.rsplit("/", 1)[1]


async def _run(
    api: Api, http: httpx.AsyncClient, db: Database, gateway: Gateway, org: OrgWithKey
) -> None:
    base = f"/v1/orgs/{org.id}"
    smtp = await api.call("POST", f"{base}/connections", json={
        "name": "relay", "channel": "email", "kind": "smtp",
        "settings": {"host": "smtp.example.com", "bounce_imap": {
            "host": "imap.example.com", "username": "bounces"}},
        "credentials": {"username": "tidings", "password": SECRETS["smtp password"],
                        "bounce_token": SECRETS["smtp bounce token"],
                        "report_secret": SECRETS["smtp report secret"],
                        "bounce_imap_password": SECRETS["imap password"]},
    })  # fmt: skip
    sms = {
        "http_sms": (
            {"url": f"{gateway.url}/send", "id_path": "messages.0.id",
             "body": {"to": "{to}", "text": "{text}", "ref": "{message_id}",
                      "api_key": SECRETS["http_sms body key"]}},
            {"headers": {"Authorization": f"Bearer {SECRETS['http_sms header']}"}},
        ),
        "kannel": ({"base_url": gateway.url},
                   {"username": "tidings", "password": SECRETS["kannel password"]}),
        "infobip": ({"base_url": gateway.url},
                    {"api_key": SECRETS["infobip key"], "inbound_token": SECRETS["infobip token"]}),
        "twilio": ({"account_sid": ACCOUNT, "base_url": gateway.url, "from_number": "+15005550006"},
                   {"auth_token": SECRETS["twilio token"]}),
    }  # fmt: skip
    connections: dict[str, int] = {}
    for kind, (settings, credentials) in sms.items():
        created = await api.call("POST", f"{base}/connections", json={
            "name": kind, "channel": "sms", "kind": kind,
            "settings": settings, "credentials": credentials})  # fmt: skip
        connections[kind] = created["id"]
    hook = await api.call("POST", f"{base}/webhooks", keep=False,
                          json={"url": "https://8.8.8.8/h", "event_types": ["*"]})  # fmt: skip
    api.webhook_secret = hook["secret"]

    await upsert(http, org, [{"phone": "+41793020001"}, {"phone": "+41793020002"}])
    template = await api.call("POST", f"{base}/templates",
                              json={"name": "t", "channel": "sms", "text": "Hello"})  # fmt: skip
    campaigns: dict[str, int] = {}
    for kind, connection_id in connections.items():
        campaign = await api.call("POST", f"{base}/campaigns", json={
            "name": kind, "channel": "sms", "template_id": template["id"],
            "connection_id": connection_id})  # fmt: skip
        campaigns[kind] = campaign["id"]
        await api.call("POST", f"{base}/broadcasts", json={
            "name": kind, "campaign_id": campaign["id"], "send_to_all": True})  # fmt: skip
    await _drain(db)
    messages = await api.call("GET", f"{base}/messages?limit=100")
    assert {m["status"] for m in messages["data"]} == {"sent"}, messages

    # Kannel calls the URL Tidings gave it, its %-escapes filled in.
    for request in gateway.requests:
        if request.path == "/cgi-bin/sendsms":
            dlr = urlsplit(request.param("dlr-url"))
            query = urlencode({"message_id": dict(
                p.split("=") for p in dlr.query.split("&"))["message_id"], "type": 1})  # fmt: skip
            answer = await http.get(f"{dlr.path}?{query}")
            assert answer.json()["accepted"] == 1, answer.text
    infobip_ids = [m["provider_id"] for m in messages["data"]
                   if m["campaign_id"] == campaigns["infobip"]]  # fmt: skip
    delivered = {"groupName": "DELIVERED", "groupId": 3, "id": 5, "name": "DELIVERED_TO_HANDSET"}
    report = {"results": [{"messageId": mid, "to": "41793020001", "status": delivered}
                          for mid in infobip_ids]}  # fmt: skip
    answer = await http.post(
        f"/reports/{connections['infobip']}/infobip/{SECRETS['infobip token']}", json=report
    )
    assert answer.status_code == 200, answer.text
    malformed = await http.post(
        f"/reports/{connections['infobip']}/infobip/{SECRETS['infobip token']}", json=[]
    )
    assert malformed.status_code == 422, malformed.text
    assert malformed.json()["instance"] == f"/reports/{connections['infobip']}/infobip/***"
    api.answers.append(malformed.text)
    bounce = dsn(message_id="<unknown@tidings>", recipient="nobody@example.com")
    answer = await http.post(
        f"/bounces/{smtp['id']}/{SECRETS['smtp bounce token']}",
        content=bounce,
        headers={"Content-Type": "message/rfc822"},
    )
    assert answer.status_code == 200, answer.text

    changed = {"username": "tidings", "password": SECRETS["new kannel password"]}
    path = f"{base}/connections/{connections['kannel']}"
    await api.call("PATCH", path, json={"credentials": changed})
    listed = await api.call("GET", f"{base}/connections")
    assert {c["kind"] for c in listed} == {"smtp", "http_sms", "kannel", "infobip", "twilio"}
    http_sms = await api.call("GET", f"{base}/connections/{connections['http_sms']}")
    assert "body" not in http_sms["settings"]
    assert "body" in http_sms["credentials_set"]
    kannel = await api.call("GET", f"{base}/connections/{connections['kannel']}")
    assert "inbound_token" in kannel["credentials_set"]
    await api.call("GET", f"{base}/webhooks")
    await api.call("GET", f"{base}/events?limit=100")
