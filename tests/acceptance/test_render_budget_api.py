"""A template over its render budget answers 422 with the reason, and while it renders
the API's event loop stays free: /healthz (and any other request) answers meanwhile."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping

import httpx
import pytest
from fastapi import FastAPI

from tests.support.factories import make_org
from tidings.content.render import Compiled, Limits, Renderer
from tidings.db.engine import Database

# 2**40 calls that print nothing: no value grows, only the clock can stop it.
SPINNER = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
)
# Doubles a list by nesting it in itself, then stringifies it.
NESTER = (
    "{% set ns = namespace(v=['x' * 100]) %}{% for i in range(24) %}"
    "{% set ns.v = [ns.v, ns.v] %}{% endfor %}{{ ns.v|upper }}"
)


class _Watched(Renderer):
    """Says when a render (a preview) starts and ends, from whatever thread runs it."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.started = threading.Event()
        self.ended = threading.Event()

    def render(self, template: Compiled, context: Mapping[str, object], *, strict: bool) -> str:
        self.started.set()
        try:
            return super().render(template, context, strict=strict)
        finally:
            self.ended.set()


@pytest.fixture
def watched(client: httpx.AsyncClient) -> Iterator[_Watched]:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    usual = app.state.renderer
    # A longer time limit than the default, so that the render is surely still running
    # when /healthz is asked; the test never measures time.
    app.state.renderer = _Watched(Limits(max_render_seconds=2.0))
    yield app.state.renderer
    app.state.renderer = usual


async def test_healthz_answers_while_a_runaway_preview_renders(
    client: httpx.AsyncClient, db: Database, watched: _Watched
) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/templates"
    made = await client.post(
        base, json={"name": "spin", "channel": "sms", "text": SPINNER}, headers=org.bearer
    )
    assert made.status_code == 201, made.text

    preview = asyncio.create_task(
        client.post(f"{base}/{made.json()['id']}/preview", json={}, headers=org.bearer)
    )
    assert await asyncio.to_thread(watched.started.wait, 30)
    health = await client.get("/healthz")

    assert health.status_code == 200
    assert not watched.ended.is_set()  # answered while the render was still running
    refused = await preview
    assert refused.status_code == 422, refused.text[:300]
    error = refused.json()["errors"][0]
    assert error["field"] == "text"
    assert error["reason"] == "line 1: rendering took over 2.0 s"


async def test_a_bomb_preview_answers_422_naming_the_limit(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/templates"
    made = await client.post(
        base,
        json={"name": "nest", "channel": "email", "subject": "Hi", "html": NESTER},
        headers=org.bearer,
    )
    assert made.status_code == 201, made.text

    refused = await client.post(f"{base}/{made.json()['id']}/preview", json={}, headers=org.bearer)

    assert refused.status_code == 422, refused.text[:300]
    assert refused.json()["errors"] == [
        {"field": "html", "reason": "line 1: this list is over 1000000 characters"}
    ]
