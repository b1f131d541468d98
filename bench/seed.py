"""The seed database of a `make bench` run, made once per engine and copied per scenario.

One org (with a live API key) holding `scale` contacts (email, phone, five attributes),
and what every scenario sends with:

- an email campaign: the ~3 KB personalised template (bench/data.py), open and click
  tracking on, an `smtp` connection to the run's smtp-sink (the org's default for email);
- an SMS campaign: a personalised text through an `infobip` connection to the run's
  local gateway (bench/gateway.py), `batch_size` messages per request;
- a segment that matches every contact (`attributes.seats >= 1`), for the fan-out;
- a seed 000 (survey invite) campaign, `external_id` "bench-invites" in project "p-1",
  survey "s-1", for the API intake.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import support
from bench.data import SMS_TEXT

from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import CampaignCreate
from tidings.connections import service as connections
from tidings.connections.schemas import ConnectionCreate
from tidings.content.render import Renderer
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.keys.service import create_org
from tidings.segments import service as segments
from tidings.templates import service as templates

INVITE_PATH = "/compat/walr/projects/p-1/surveys/s-1/invites"
INVITE_CAMPAIGN = "bench-invites"


@dataclass(frozen=True)
class Seed:
    url: str
    scale: int
    org_id: int
    api_key: str
    email_campaign_id: int
    sms_campaign_id: int
    segment_id: int
    invite_campaign: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("url", "api_key")}


@dataclass(frozen=True)
class Endpoints:
    """Where the seed's connections point, and how they are sized."""

    sink_port: int
    gateway_url: str
    pool: int  # SMTP connections per worker
    concurrency: int  # each connection's max_concurrency (cluster-wide)
    sms_batch: int  # messages per Infobip request


async def _sms_campaign(db: Database, *, org_id: int, endpoints: Endpoints) -> int:
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name="bench sms",
            channel="sms",
            subject=None,
            html=None,
            text=SMS_TEXT,
        )
    async with db.transaction() as session:
        connection = await connections.create_connection(
            session,
            org_id=org_id,
            body=ConnectionCreate(
                name="bench gateway",
                channel="sms",
                kind="infobip",
                is_default=True,
                max_concurrency=endpoints.concurrency,
                settings={"base_url": endpoints.gateway_url, "batch_size": endpoints.sms_batch},
                credentials={"api_key": "bench"},
            ),
        )
    async with db.transaction() as session:
        campaign = await campaigns.create_campaign(
            session,
            org_id=org_id,
            body=CampaignCreate(
                name="bench sms",
                channel="sms",
                template_id=template.id,
                connection_id=connection.id,
                sms_sender="Acme",
            ),
        )
    return campaign.id


async def invite_campaign(db: Database, *, org_id: int) -> None:
    """The seed 000 campaign the API intake posts to (INVITE_PATH, INVITE_CAMPAIGN)."""
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name="bench invites",
            channel="email",
            subject="{{ first_name }}, a minute for {{ store }}?",
            html=None,
            text="Hi {{ first_name }}, tell us about {{ store }}: {{ invite_link }}",
        )
    async with db.transaction() as session:
        await campaigns.create_campaign(
            session,
            org_id=org_id,
            body=CampaignCreate(
                name="bench invites",
                channel="email",
                template_id=template.id,
                from_email="research@acme.example",
                external_id=INVITE_CAMPAIGN,
                project_ref="p-1",
                survey_ref="s-1",
                invite_url="https://survey.example/s-1?store={{ store | urlencode }}",
            ),
        )


async def _fill(url: str, *, scale: int, endpoints: Endpoints) -> dict[str, Any]:
    db = Database(support.settings(url))
    try:
        async with db.transaction() as session:
            created = await create_org(session, name="bench", login="bench")
        org_id = created.org.id
        await support.create_contacts(db, org_id=org_id, count=scale, phones=True, progress=True)
        email_campaign_id, _ = await support.email_campaign(
            db,
            org_id=org_id,
            port=endpoints.sink_port,
            pool=endpoints.pool,
            concurrency=endpoints.concurrency,
            tracking=True,
            name="bench email",
        )
        sms_campaign_id = await _sms_campaign(db, org_id=org_id, endpoints=endpoints)
        async with db.transaction() as session:
            segment = await segments.create_segment(
                session,
                org_id=org_id,
                name="everyone",
                description="every contact: seats are 1 to 50",
                filter={"field": "attributes.seats", "op": "gte", "value": 1},
            )
        await invite_campaign(db, org_id=org_id)
    finally:
        await db.dispose()
    return {
        "org_id": org_id,
        "api_key": created.key.secret,
        "email_campaign_id": email_campaign_id,
        "sms_campaign_id": sms_campaign_id,
        "segment_id": segment.segment.id,
    }


def make_seed(engine: str, *, scale: int, endpoints: Endpoints) -> Seed:
    """A migrated, filled seed database on `engine` ("sqlite" or "postgres")."""
    print(f"seeding {engine} with {scale:,} contacts …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    url = support.fresh_sqlite("seed.db") if engine == "sqlite" else support.new_postgres()
    migrate.upgrade(url)
    filled, _ = support.run_loop(_fill(url, scale=scale, endpoints=endpoints))
    return Seed(
        url=url,
        scale=scale,
        invite_campaign=INVITE_CAMPAIGN,
        seconds=round(time.perf_counter() - started, 1),
        **filled,
    )


def clone(seed: Seed, name: str) -> str:
    """A fresh copy of the seed's database for one scenario."""
    if seed.url.startswith("sqlite"):
        return support.clone_sqlite(seed.url, f"{name}.db")
    return support.clone_postgres(seed.url)


def discard(url: str) -> None:
    support.discard_database(url)
