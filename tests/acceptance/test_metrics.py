"""/metrics: guarded by TIDINGS_METRICS_TOKEN, in Prometheus' format, showing what the
dispatcher and the API did; every answer names its request id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.app import create_app
from tidings.channels.base import PermanentSendError
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.monitoring.outbox import OutboxGauges
from tidings.runtime import JsonFormatter
from tidings.settings import Settings
from tidings.testing import RecordingChannel
from tidings.testing.channel import answers

TOKEN = "metrics-token-for-the-test"


@pytest.fixture
async def watched(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_metrics_answer_404_while_no_token_is_set(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


async def test_metrics_need_the_token(watched: httpx.AsyncClient) -> None:
    assert (await watched.get("/metrics")).status_code == 401
    wrong = await watched.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_metrics_show_the_sends_the_outbox_and_the_api(
    watched: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign = await email_campaign(db, org)
    people = await audience(db, org, [{"email": f"m{i}@example.com"} for i in range(3)])
    await broadcast_now(db, org, campaign, people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    answer = await watched.get(
        f"/v1/orgs/{org.id}/messages", headers={**org.bearer, "X-Request-ID": "req-42"}
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "req-42"
    assert len((await watched.get("/healthz")).headers["x-request-id"]) == 16  # made up

    scraped = await watched.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'tidings_provider_call_seconds_count{connection="sink",kind="sink"}' in text
    assert (
        'tidings_message_results_total{channel="email",connection="sink",kind="sink",'
        'reason="ok",result="sent"}' in text
    )
    assert (
        'tidings_http_request_seconds_count{method="GET",route="/v1/orgs/{org_id}/messages",'
        'status="2xx"}' in text
    )
    assert "tidings_oldest_due_seconds 0.0" in text
    assert 'tidings_messages{channel="email",status="sent"} 3.0' in text  # finished ones too


async def test_the_outbox_is_counted_by_every_status_at_most_once_every_few_seconds(
    db: Database,
) -> None:
    org = await make_org(db)
    campaign = await email_campaign(db, org)
    people = await audience(db, org, [{"email": f"o{i}@example.com"} for i in range(3)])
    await broadcast_now(db, org, campaign, people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    now = [0.0]
    gauges = OutboxGauges(seconds=10, clock=lambda: now[0])

    first, same = await asyncio.gather(gauges.figures(db), gauges.figures(db))
    assert first.counts == {("sent", "email"): 3}
    assert same is first  # two scrapes at once: one read
    await broadcast_now(db, org, campaign, people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()  # 3 more sent
    now[0] = 9.9
    assert (await gauges.figures(db)) is first  # not read again yet
    now[0] = 10.0
    again = await gauges.figures(db)
    assert again.counts == {("sent", "email"): 6}
    assert gauges.reads == 2


async def test_a_provider_failure_shows_in_the_metrics_and_in_a_json_log_line(
    watched: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign = await email_campaign(db, org)
    people = await audience(db, org, [{"email": f"f{i}@example.com"} for i in range(3)])
    broadcast = await broadcast_now(db, org, campaign, people.list_id)
    refusal = "RCPT TO: 550 5.1.1 <f1@example.com>: no such user"
    channel = RecordingChannel(answers({"f1@example.com": PermanentSendError(refusal)}))
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tidings.dispatcher.deliverer")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await Dispatcher(db, renderer=Renderer(), channels=lambda spec, db: channel).drain()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    failures = [
        line
        for line in map(json.loads, lines.getvalue().splitlines())
        if line["level"] == "warning"
    ]
    assert len(failures) == 1
    failure = failures[0]
    assert failure["logger"] == "tidings.dispatcher.deliverer"
    assert failure["org_id"] == org.id
    assert failure["broadcast_id"] == broadcast
    assert isinstance(failure["message_id"], int)
    assert f"(org {org.id}, broadcast {broadcast})" in failure["message"]
    # The log holds no recipient: the provider's reply quoted the address, the line does not.
    assert failure["reason"] == "RCPT TO: 550 5.1.1 <<recipient>>: no such user"
    assert "f1@example.com" not in lines.getvalue()
    assert "permanent" in failure["message"]
    scraped = await watched.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = scraped.text
    assert (
        'tidings_message_results_total{channel="email",connection="sink",kind="sink",'
        'reason="5xx",result="failed"}' in text
    )
    assert "tidings_render_budget_refusals_total" in scraped.text
