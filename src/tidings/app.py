"""The composition root of the HTTP service: `create_app(settings)` wires everything.

Importing this module does no work; the database engine is created when the app starts
(lifespan) and disposed of when it stops. With `TIDINGS_DISPATCHER` the app runs the
worker's loops too (`dispatcher/run.py`); should one of them die, the loops stop, and so
does the server when its runner gave the app a way to stop it (`app.state.stop_serving`,
set by `tidings serve`), which then exits with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tidings import __version__
from tidings.api import health, openapi, problems
from tidings.api.body import BodyGuard
from tidings.api.deps import KeyStore
from tidings.api.observe import Observe
from tidings.applications import routes as applications
from tidings.audit import routes as audit
from tidings.bounces import routes as bounces
from tidings.broadcasts import routes as broadcasts
from tidings.campaigns import routes as campaigns
from tidings.compat import infobip, invent, octopush, walr
from tidings.compat.routing import unrouted
from tidings.connections import routes as connections
from tidings.console.routes import PAGES as CONSOLE_PAGES
from tidings.console.static import assets
from tidings.contacts import routes as contacts
from tidings.content.render import Renderer
from tidings.credits import routes as credits
from tidings.db.engine import Database
from tidings.dispatcher.run import LoopDied, build_loops, run_loops
from tidings.domains import routes as domains
from tidings.events import routes as events
from tidings.invites import routes as invites
from tidings.keys import routes as keys
from tidings.keys import service as key_store
from tidings.links import routes as links
from tidings.links.secret import load_secret
from tidings.links.tokens import TokenSigner
from tidings.lists import routes as lists
from tidings.messages import routes as messages
from tidings.monitoring import routes as monitoring
from tidings.monitoring.outbox import OutboxGauges
from tidings.orgs import routes as orgs
from tidings.privacy import routes as privacy
from tidings.reports import routes as reports
from tidings.segments import routes as segments
from tidings.settings import Settings
from tidings.suppressions import routes as suppressions
from tidings.templates import routes as templates
from tidings.webhooks import routes as webhooks

DESCRIPTION = """
Tidings sends campaigns, invitations and broadcasts by email and SMS.

**Authentication** — every `/v1` route takes an API key, in any of three styles:
`Authorization: Bearer <key>`; the headers `api-login: <org login>` + `api-key: <key>`;
or HTTP Basic with the org login as user and the key as password.

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) `application/problem+json`
documents; `errors[]` names each bad field, and the row `index` in batches. 401: missing or
invalid credentials. 403: the key belongs to another org or lacks the scope. 404: no such
object in the key's org.

**Pagination** — list routes take `limit` and `cursor` and answer `{"data", "next_cursor"}`.
"""


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The database cannot be reached right now: retry after `Retry-After`",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}
"""What every route may answer while the database is away (`db/availability.py`): in the
dialect's own shape under /compat, in problem+json under /v1."""
UNAVAILABLE_PROBLEM: dict[int | str, dict[str, Any]] = {
    503: UNAVAILABLE[503] | {"content": {"application/problem+json": {}}}
}
EVERY_V1_ROUTE: dict[int | str, dict[str, Any]] = {
    **problems.answers(401, 403, 404),
    **UNAVAILABLE_PROBLEM,
}
"""What every /v1 route may answer: each takes a key (401), acts in the path's org with a
scope (403), and its path may name nothing (404: an id out of range, another org's
object). `api/openapi.py` adds 413, 415 and 422 where a route takes a body or parameters."""

DIALECTS = {"/compat/walr": walr, "/compat/octopush": octopush, "/compat/invent": invent,
            "/compat/infobip": infobip}  # fmt: skip
"""Each dialect by its base URL: its routes, and its shape for what reaches none of them."""


V1 = (
    orgs, keys, contacts, privacy, lists, segments, templates, connections, campaigns, invites,
    broadcasts, messages, events, applications, credits, suppressions, webhooks, domains,
    reports, audit,
)  # fmt: skip
"""The packages whose routers make up `/v1`, in the order the API document lists them."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open what the routes use, from `app.state.settings` as it stands when the app starts.

    Reading the settings from the app's state (not from a closure) lets the test suite build
    the app once and start it on each test's own database: building the routes costs far
    more than starting them.
    """
    settings: Settings = app.state.settings
    app.state.db = Database(settings)
    app.state.renderer = Renderer()
    app.state.signer = TokenSigner(load_secret(settings))
    app.state.outbox_gauges = OutboxGauges()  # /metrics: the outbox read every few seconds
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    if settings.dispatcher:
        loops = build_loops(settings, app.state.db, stop)
        worker = asyncio.create_task(run_loops(loops, stop), name="worker")
        worker.add_done_callback(lambda task: _worker_ended(app, task))
    try:
        yield
    finally:
        stop.set()
        if worker is not None:
            with contextlib.suppress(LoopDied):  # logged when it happened
                await worker  # finishes its batch: outcomes recorded, leases released
        await app.state.db.dispose()


def _worker_ended(app: FastAPI, worker: asyncio.Task[None]) -> None:
    """A worker whose loop died stops the server too, when the server said how: an API
    that sends nothing must not look healthy."""
    if worker.cancelled() or not isinstance(worker.exception(), LoopDied):
        return
    app.state.worker_died = True
    stop_serving = getattr(app.state, "stop_serving", None)
    if stop_serving is not None:
        stop_serving()


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Tidings",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    keys_for_api: KeyStore = key_store  # mypy checks the module against the protocol
    app.state.keys = keys_for_api  # what api.deps authenticates with
    problems.install(
        app, elsewhere={base: unrouted(dialect.error_shape) for base, dialect in DIALECTS.items()}
    )
    app.add_middleware(BodyGuard)
    app.add_middleware(Observe)
    app.include_router(health.router)
    app.include_router(monitoring.router)
    app.include_router(links.router)
    app.include_router(suppressions.public)
    app.include_router(reports.public)
    app.include_router(bounces.public)
    for module in V1:
        app.include_router(module.router, prefix="/v1", responses=EVERY_V1_ROUTE)
    for dialect in DIALECTS.values():
        app.include_router(dialect.router)  # each declares its own answers, 503 included
    for page in CONSOLE_PAGES:
        app.include_router(page.router)  # HTML, answering its own failures as pages
    app.mount("/static", assets(), name="static")
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    return app
