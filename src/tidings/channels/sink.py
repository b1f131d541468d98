"""The built-in sink: records every message instead of delivering it.

It is every org's default connection for both channels, so a new installation sends
real campaigns with nothing else set up, and what was "sent" can be read back through
`GET /v1/orgs/{org_id}/sink/messages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, insert

from tidings.channels.base import Outgoing, Report, Result, Sent
from tidings.channels.models import SinkMessage
from tidings.channels.provider import NoSettings, Provider, SmsCredentials
from tidings.db.base import utcnow
from tidings.db.engine import Database

SINK = cast(Table, SinkMessage.__table__)


class SinkChannel:
    """Every org's default connection: one INSERT per batch, whatever its size."""

    # Capabilities (see `Channel`): none to state; the sink has no limits, so the
    # dispatcher hands it each group whole and never reads them.
    parallelism: int | None = None
    messages_per_request: int = 1

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        now = utcnow()
        rows = [
            {
                "org_id": m.org_id,
                "message_id": m.message_id,
                "channel": m.channel,
                "recipient": m.recipient,
                "subject": m.subject,
                "content": m.content.decode("ascii", "replace")
                if isinstance(m.content, bytes)
                else m.content,
                "segments": m.segments,
                "created_at": now,
            }
            for m in batch
        ]
        # Recording the copies is the sink's delivery: a transaction of its own, as a
        # provider's call is outside the dispatcher's transactions.
        async with self.db.transaction() as session:
            ids = (
                await session.execute(
                    insert(SINK).returning(SINK.c.id, sort_by_parameter_order=True), rows
                )
            ).scalars()
            results: list[Result] = [Sent(f"sink-{sink_id}") for sink_id in ids]
        return results

    async def close(self) -> None:
        return None


# ── the connection kind (see channels/provider.py) ──────────────────────────────────

PROVIDER = Provider(
    kind="sink",
    channels=frozenset({"email", "sms"}),
    settings=NoSettings,
    credentials=SmsCredentials,  # an SMS sink may take inbound SMS and reports too
    build=lambda spec, db: SinkChannel(db),
)
