"""The dispatcher: start due broadcasts, claim due messages, render, send, record.

    tick() = _prepare() then _complete():
    _prepare():  due broadcasts ──start_due──▶ expanded, SENDING
                 expired leases ──reap──▶ queued again
                 claim(batch) ──▶ render each (sandboxed)
    _complete(): channel.send(batch) ──▶ record(outcomes) in one transaction
                 ──▶ finish broadcasts

`run()` overlaps the two: batch N+1 is claimed and rendered while batch N is sent and
recorded (rendering looks at the event loop every `RENDER_SLICE` messages, so batch N's
connections keep going), so the process renders while the provider works instead of
waiting for it. Claims commit at once (the lease protects the rows); outcomes are written
a batch at a time; a worker that dies mid-batch leaves leased rows that `reap` queues
again, so a message is lost never and sent twice at most when it was in flight (two
batches, when it dies with one on the wire and the next rendered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select

from tidings.broadcasts.service import start_due
from tidings.campaigns.models import Campaign
from tidings.channels.base import (
    Channel,
    Outgoing,
    PermanentSendError,
    Result,
    SendError,
    Sent,
    TransientSendError,
)
from tidings.channels.registry import SINK, ConnectionSpec, build_channel
from tidings.connections.models import Connection
from tidings.contacts.models import Contact
from tidings.content import mime, sms
from tidings.content.context import FIELDS, render_context
from tidings.content.footer import with_unsubscribe_line
from tidings.content.render import Compiled, Renderer, TemplateError
from tidings.content.tracking import add_open_pixel, rewrite_links
from tidings.db.base import utcnow
from tidings.db.dialect import one_of
from tidings.db.engine import Database, begin_write
from tidings.dispatcher import queries
from tidings.dispatcher.limits import ConnectionLimiter, Grant
from tidings.dispatcher.queries import Claimed, Outcome
from tidings.dispatcher.retry import RetryPolicy
from tidings.links.service import (
    INVITE_POSITION,
    click_url,
    open_url,
    play_url,
    unsubscribe_url,
)
from tidings.links.tokens import TokenSigner
from tidings.templates.models import Template

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# Compiled templates kept between batches. Single sends with inline content make one
# template per distinct content, so past this many the cache keeps only the batch's own.
TEMPLATE_CACHE = 1_000
# Messages rendered between two looks at the event loop, so that the batch being sent
# meanwhile (`run` overlaps two) keeps its connections busy.
RENDER_SLICE = 64


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=5)
    idle_sleep: float = 0.5
    public_url: str = "http://127.0.0.1:8000"
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(slots=True)
class _Rendered:
    """A batch ready for its connections: failures found while rendering, the links to
    store, and the messages by connection (None: the sink)."""

    outcomes: list[Outcome]
    links: list[dict[str, Any]]
    by_channel: dict[int | None, list[tuple[Claimed, Outgoing]]]
    specs: dict[int | None, ConnectionSpec]


@dataclass(slots=True)
class _Batch:
    """What one round found: `found` counts broadcasts started, leases reaped and
    messages claimed; `rendered` is None when nothing was claimed."""

    found: int
    lease_until: datetime
    claimed: list[Claimed]
    rendered: _Rendered | None


@dataclass(slots=True)
class _CompiledTemplate:
    updated_at: datetime
    parts: dict[str, Compiled]
    names: frozenset[str] = frozenset()  # what its parts read from the context


class Dispatcher:
    """One worker. `tick()` does one round; `run()` ticks until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        renderer: Renderer,
        config: DispatcherConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        signer: TokenSigner | None = None,
    ) -> None:
        self.db = db
        self.renderer = renderer
        self.config = config or DispatcherConfig()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        # Without the configured key (tests, one-off runs) links verify in this process only.
        self.signer = signer or TokenSigner(secrets.token_bytes(32))
        holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.limiter = ConnectionLimiter(db, holder=holder, clock=lambda: self.clock().timestamp())
        self._templates: dict[int, _CompiledTemplate] = {}
        self._invite_urls: dict[tuple[int, datetime], Compiled] = {}  # by campaign version
        self._channels: dict[int | None, tuple[datetime | None, Channel]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; sleep briefly when there was nothing to do."""
        try:
            await self._run(stop)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every provider connection this worker opened."""
        channels, self._channels = self._channels, {}
        for _, channel in channels.values():
            await channel.close()

    async def _run(self, stop: asyncio.Event) -> None:
        # Two batches overlap: while one is on the wire and being recorded, the next is
        # claimed and rendered, so this process renders while the provider works.
        sending: asyncio.Task[int | None] | None = None
        try:
            while not stop.is_set():
                batch = await self._guarded(self._prepare(), "claiming a batch")
                busy = (await sending or 0) if sending is not None else 0
                sending = None
                if batch is not None and batch.claimed:
                    sending = asyncio.create_task(self._guarded(self._complete(batch), "sending"))
                    continue
                if batch is not None:
                    busy += await self._guarded(self._complete(batch), "sending") or 0
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.config.idle_sleep)
        finally:
            if sending is not None:  # the batch in hand is sent and recorded
                await sending

    async def _guarded(self, step: Awaitable[_T], what: str) -> _T | None:
        try:
            return await step
        except Exception:
            log.exception("dispatcher failed %s; retrying", what)
            return None

    async def drain(self, max_ticks: int = 10_000, *, horizon: float = 5.0) -> None:
        """Tick until nothing is left to do now or within `horizon` seconds (deferred by a
        connection's limits), waiting for it in real time (for tests and one-shot runs)."""
        for _ in range(max_ticks):
            if await self.tick():
                continue
            async with self.db.session() as session:
                due = await queries.next_due(session)
            before = self.clock()
            wait = (due - before).total_seconds() if due is not None else None
            if wait is None or wait > horizon:
                return
            await asyncio.sleep(max(wait, 0.0) + 0.01)
            if self.clock() == before:  # an injected clock that only its owner moves
                return
        raise RuntimeError("dispatcher did not drain")

    async def tick(self) -> int:
        """One round; returns how much work it found (0 = idle)."""
        return await self._complete(await self._prepare())

    async def _prepare(self) -> _Batch:
        """Start due broadcasts, queue expired leases again, claim and render a batch."""
        now = self.clock()
        started = await self._start_due_broadcasts(now)
        lease_until = now + self.config.lease
        async with self.db.session() as session:
            await begin_write(session)
            reaped = await queries.reap(session, now=now)
            claimed = await queries.claim(
                session, now=now, lease_until=lease_until, limit=self.config.batch_size
            )
            # Checked again at the last moment: an address suppressed since the message
            # was made (a bounce, a complaint, a STOP mid-broadcast) is skipped, not sent.
            claimed = await queries.skip_suppressed(session, claimed=claimed, now=now)
            await session.commit()
        rendered = await self._render_batch(claimed) if claimed else None
        return _Batch(started + reaped + len(claimed), lease_until, claimed, rendered)

    async def _complete(self, batch: _Batch) -> int:
        """Send a prepared batch, record its outcomes, finish broadcasts; returns the work
        done (0 = idle)."""
        if batch.rendered is not None:
            outcomes, links = await self._send(batch.rendered)
            async with self.db.session() as session:
                await begin_write(session)
                await queries.record(
                    session,
                    outcomes=outcomes,
                    lease_until=batch.lease_until,
                    now=self.clock(),
                    links=links,
                    charged={c.id: c for c in batch.claimed if c.cost},
                )
                await session.commit()
        async with self.db.session() as session:
            await begin_write(session)
            finished = await queries.finish_broadcasts(session, now=self.clock())
            await session.commit()
        return batch.found + finished

    async def _start_due_broadcasts(self, now: datetime) -> int:
        async with self.db.session() as session:
            due = await queries.due_broadcasts(session, now=now)
        started = 0
        for broadcast_id in due:
            async with self.db.session() as session:
                started += await start_due(session, broadcast_id=broadcast_id, now=now)
        return started

    async def _render_batch(self, claimed: Sequence[Claimed]) -> _Rendered:
        """Each message rendered and routed to its connection; a message that cannot be
        rendered has its outcome (failed) at once."""
        campaigns, templates, contacts = await self._load(claimed)
        routes = await self._connections(campaigns.values())
        outcomes: list[Outcome] = []
        links: list[dict[str, Any]] = []
        by_channel: dict[int | None, list[tuple[Claimed, Outgoing]]] = defaultdict(list)
        date = self.clock()  # one Date header per batch: formatted once
        for n, message in enumerate(claimed, 1):
            if n % RENDER_SLICE == 0:
                await asyncio.sleep(0)  # let the batch on the wire read replies, send more
            try:
                outgoing, message_links = self._render(
                    message, campaigns, templates, contacts, date=date
                )
            except (TemplateError, mime.HeaderInjection, PermanentSendError) as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                outcomes.append(Outcome(message.id, message.broadcast_id, "failed", reason))
                continue
            links.extend(message_links)
            campaign_id = message.campaign_id
            assert campaign_id is not None  # _render refuses a message without a campaign
            route = SINK if message.is_test else routes[campaign_id]  # test keys: sink only
            by_channel[route.id].append((message, outgoing))
        specs = {None: SINK} | {spec.id: spec for spec in routes.values()}
        return _Rendered(outcomes, links, by_channel, specs)

    async def _send(self, rendered: _Rendered) -> tuple[list[Outcome], list[dict[str, Any]]]:
        """Every outcome of a rendered batch, and the links to store."""
        outcomes = list(rendered.outcomes)
        for connection_id, group in rendered.by_channel.items():
            outcomes.extend(await self._send_group(rendered.specs[connection_id], group))
        return outcomes, rendered.links

    async def _send_group(
        self, spec: ConnectionSpec, group: list[tuple[Claimed, Outgoing]]
    ) -> list[Outcome]:
        """Send what the connection's cluster-wide limits allow now; defer the rest."""
        channel = await self._channel(spec)
        if spec.id is None:  # the sink has no limits
            sunk = await self._deliver(channel, [outgoing for _, outgoing in group])
            return [
                self._outcome(message, result, segments=outgoing.segments)
                for (message, outgoing), result in zip(group, sunk, strict=True)
            ]
        # Concurrency caps how many sends are in flight at once (slots held while this
        # group is sent); the rate caps how many go now at all. A channel that says how
        # many sends it runs at once (`parallelism`: an SMTP pool's connections) asks for
        # no more slots than that, and when it has them all gets the whole grant in one
        # call, which it streams (pipelined SMTP). Otherwise the grant goes `slots.count`
        # sends at a time. A channel that carries many messages in one request
        # (`messages_per_request`: Infobip's batch_size) counts a request as one send.
        parallelism = channel.parallelism
        per_send = channel.messages_per_request
        sends = -(-len(group) // per_send)
        hold = self.config.lease.total_seconds()
        slots = await self.limiter.acquire(
            spec.id,
            want=min(sends, spec.max_concurrency, parallelism or sends),
            per_second=None,
            max_concurrency=spec.max_concurrency,
            hold_seconds=hold,
        )
        grant = slots
        now_sending: list[tuple[Claimed, Outgoing]] = []
        results: list[Result] = []
        try:
            if slots.count and spec.max_per_second is None:
                # No rate to take from: the slots' grant already saw any push-back block.
                grant = Grant(spec.id, len(group), 0.0)
            elif slots.count:
                grant = await self.limiter.acquire(
                    spec.id,
                    want=len(group),
                    per_second=spec.max_per_second,
                    max_concurrency=None,
                    hold_seconds=hold,
                )
            if slots.count:
                now_sending = group[: grant.count]
                whole = parallelism is not None and parallelism <= slots.count
                width = max(len(now_sending), 1) if whole else slots.count * per_send
                for start in range(0, len(now_sending), width):
                    chunk = now_sending[start : start + width]
                    sent = await self._deliver(channel, [o for _, o in chunk])
                    results.extend(sent)
                    if _pushback(sent) is not None:
                        break  # the provider said to hold off: what is left waits too
        finally:
            await self.limiter.release(slots)
        later = group[len(results) :]
        outcomes: list[Outcome] = []
        for (message, outgoing), result in zip(now_sending, results, strict=False):
            if isinstance(result, TransientSendError) and not result.attempted:
                later.append((message, outgoing))  # never handed over: no attempt used
            else:
                outcomes.append(self._outcome(message, result, segments=outgoing.segments))
        pushback = _pushback(results)
        if pushback is not None:
            await self.limiter.penalise(spec.id, seconds=pushback)
        # Spread the rest over the time the rate allows, so they do not all return at once.
        step = 1 / spec.max_per_second if spec.max_per_second else 0.0
        wait = max(grant.retry_after, pushback or 0.0)
        now = self.clock()
        outcomes.extend(
            Outcome(
                message.id,
                message.broadcast_id,
                "queued",
                retry_at=now + timedelta(seconds=wait + k * step),
                deferred=True,
            )
            for k, (message, _) in enumerate(later)
        )
        return outcomes

    async def _connections(self, campaigns: Iterable[Campaign]) -> dict[int, ConnectionSpec]:
        """Each campaign's connection: its own, else its org's default for the channel,
        else the built-in sink."""
        wanted = list(campaigns)
        if not wanted:
            return {}
        explicit = {c.connection_id for c in wanted if c.connection_id is not None}
        orgs = {c.org_id for c in wanted}
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Connection).where(
                    or_(
                        Connection.id.in_(explicit),
                        Connection.org_id.in_(orgs) & Connection.is_default.is_(True),
                    )
                )
            )
            found = {row.id: row for row in rows}
        defaults = {(c.org_id, c.channel): c for c in found.values() if c.is_default}
        routes: dict[int, ConnectionSpec] = {}
        for campaign in wanted:
            row = found.get(campaign.connection_id) if campaign.connection_id else None
            row = row or defaults.get((campaign.org_id, campaign.channel))
            routes[campaign.id] = SINK if row is None else _spec(row)
        return routes

    async def _channel(self, spec: ConnectionSpec) -> Channel:
        """The live channel for a connection, rebuilt when the connection was changed."""
        cached = self._channels.get(spec.id)
        if cached is not None and cached[0] == spec.updated_at:
            return cached[1]
        if cached is not None:
            await cached[1].close()
        channel = build_channel(spec, self.db)
        self._channels[spec.id] = (spec.updated_at, channel)
        return channel

    async def _deliver(self, channel: Channel, batch: list[Outgoing]) -> Sequence[Result]:
        try:
            return await channel.send(batch)
        except SendError as exc:  # the whole batch failed the same way
            return [exc] * len(batch)

    def _outcome(self, message: Claimed, result: Result, *, segments: int | None) -> Outcome:
        if isinstance(result, Sent):
            return Outcome(
                message.id,
                message.broadcast_id,
                "sent",
                provider_id=result.provider_id,
                segments=segments,
            )
        if isinstance(result, TransientSendError) and not self.config.retry.gives_up(
            message.attempts
        ):
            delay = self.config.retry.delay(
                message.attempts, retry_after=result.retry_after, rng=self.rng
            )
            retry_at = self.clock() + timedelta(seconds=delay)
            return Outcome(
                message.id, message.broadcast_id, "queued", result.reason, retry_at=retry_at
            )
        return Outcome(message.id, message.broadcast_id, "failed", result.reason)

    async def _load(
        self, claimed: Iterable[Claimed]
    ) -> tuple[dict[int, Campaign], dict[int, _CompiledTemplate], dict[int, dict[str, Any]]]:
        campaign_ids = {m.campaign_id for m in claimed if m.campaign_id is not None}
        contact_ids = {m.contact_id for m in claimed if m.contact_id is not None}
        async with self.db.session() as session:
            campaigns = {
                c.id: c
                for c in await session.scalars(
                    select(Campaign).where(Campaign.id.in_(campaign_ids))
                )
            }
            template_ids = {c.template_id for c in campaigns.values()}
            stamp_rows = await session.execute(
                select(Template.id, Template.updated_at).where(Template.id.in_(template_ids))
            )
            stamps = dict(stamp_rows.all())
            if len(self._templates) > TEMPLATE_CACHE:
                self._templates = {t: c for t, c in self._templates.items() if t in stamps}
            stale = [
                tid
                for tid, at in stamps.items()
                if self._templates.get(tid, None) is None or self._templates[tid].updated_at != at
            ]
            if stale:
                for template in await session.scalars(
                    select(Template).where(Template.id.in_(stale))
                ):
                    self._templates[template.id] = self._compile(template)
            rows = await session.execute(
                select(
                    Contact.id, Contact.attributes, *(getattr(Contact, f) for f in FIELDS)
                ).where(one_of(session, Contact.id, sorted(contact_ids)))
            )
            contacts = {
                row.id: {"attributes": row.attributes, **{f: getattr(row, f) for f in FIELDS}}
                for row in rows
            }
        return campaigns, self._templates, contacts

    def _compile(self, template: Template) -> _CompiledTemplate:
        parts = {}
        for part, html in (("subject", False), ("html", True), ("text", False)):
            source = getattr(template, part)
            if source is not None:
                parts[part] = self.renderer.compile(source, field=part, html=html)
        names = frozenset().union(*(compiled.names for compiled in parts.values()))
        return _CompiledTemplate(updated_at=template.updated_at, parts=parts, names=names)

    def _invite(
        self, message: Claimed, campaign: Campaign, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The stored link behind this message's `{{ invite_link }}`: the campaign's
        `invite_url` rendered for the recipient; None if that is not an http(s) URL."""
        assert campaign.invite_url is not None
        version = (campaign.id, campaign.updated_at)
        compiled = self._invite_urls.get(version)
        if compiled is None:
            compiled = self.renderer.compile(campaign.invite_url, field="invite_url", html=False)
            self._invite_urls[version] = compiled
        url = self.renderer.render(compiled, context, strict=False).strip()
        if not url.lower().startswith(("http://", "https://")):
            return None
        return {"message_id": message.id, "position": INVITE_POSITION,
                "org_id": message.org_id, "url": url, "clicks": 0}  # fmt: skip

    def _render(
        self,
        message: Claimed,
        campaigns: dict[int, Campaign],
        templates: dict[int, _CompiledTemplate],
        contacts: dict[int, dict[str, Any]],
        *,
        date: datetime,
    ) -> tuple[Outgoing, list[dict[str, Any]]]:
        """The message to hand to the channel (email: dated `date`), and the links to
        store for it."""
        if message.recipient is None or message.campaign_id not in campaigns:
            raise PermanentSendError("nothing to send: no recipient or campaign")
        campaign = campaigns[message.campaign_id]
        template = templates[campaign.template_id]
        compiled = template.parts
        contact = contacts.get(message.contact_id) if message.contact_id is not None else None
        context = render_context(contact, message.variables)
        links: list[dict[str, Any]] = []
        if campaign.invite_url is not None:
            invite = self._invite(message, campaign, context)
            if invite is not None:
                context["invite_link"] = click_url(
                    self.signer, self.config.public_url, message.id, INVITE_POSITION
                )
                links.append(invite)
        if campaign.track_opens and "play_url" in template.names:  # a token costs µs
            context["play_url"] = play_url(self.signer, self.config.public_url, message.id)
        rendered = self.renderer.render_parts(compiled, context, strict=False)
        if campaign.track_clicks:
            rendered, originals = rewrite_links(
                rendered,
                lambda position: click_url(
                    self.signer, self.config.public_url, message.id, position
                ),
                own=f"{self.config.public_url.rstrip('/')}/",
            )
            links += [
                {"message_id": message.id, "position": position, "org_id": message.org_id,
                 "url": url, "clicks": 0}
                for position, url in enumerate(originals)
            ]  # fmt: skip
        if campaign.track_opens and "html" in rendered:
            rendered["html"] = add_open_pixel(
                rendered["html"], open_url(self.signer, self.config.public_url, message.id)
            )
        if message.channel == "sms":
            text = rendered.get("text", "")
            sms_out = Outgoing(
                message_id=message.id,
                org_id=message.org_id,
                channel="sms",
                sender=campaign.sms_sender,
                recipient=message.recipient,
                subject=None,
                content=text,
                segments=sms.shape(text).segments,
            )
            return sms_out, links
        headers: tuple[tuple[str, str], ...] = ()
        if campaign.purpose == "marketing":
            url = unsubscribe_url(self.signer, self.config.public_url, message.id)
            headers = (
                ("List-Unsubscribe", f"<{url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
            rendered = with_unsubscribe_line(rendered, url, campaign.language)
        sender = mime.Address(campaign.from_email or "", campaign.from_name)
        name = " ".join(
            p for p in ((contact or {}).get("first_name"), (contact or {}).get("last_name")) if p
        )
        email = mime.Email(
            sender=sender,
            to=mime.Address(message.recipient, name or None),
            subject=rendered.get("subject", ""),
            text=rendered.get("text"),
            html=rendered.get("html"),
            message_id=f"{message.id}.{campaign.id}@{sender.email.rpartition('@')[2] or 'tidings'}",
            date=date,
            reply_to=mime.Address(campaign.reply_to) if campaign.reply_to else None,
            headers=headers,
        )
        email_out = Outgoing(
            message_id=message.id,
            org_id=message.org_id,
            channel="email",
            sender=sender.email,
            recipient=message.recipient,
            subject=email.subject,
            content=mime.build(email),
        )
        return email_out, links


def _pushback(results: Iterable[Result]) -> float | None:
    """The longest a provider asked to hold off in `results` (HTTP Retry-After, SMTP 421);
    None when none did."""
    waits = [
        r.retry_after
        for r in results
        if isinstance(r, TransientSendError) and r.retry_after is not None
    ]
    return max(waits, default=None)


def _spec(row: Connection) -> ConnectionSpec:
    return ConnectionSpec(
        id=row.id,
        kind=row.kind,
        settings=row.settings,
        credentials=row.credentials,
        max_concurrency=row.max_concurrency,
        updated_at=row.updated_at,
        max_per_second=row.max_per_second,
    )
