"""From a claimed batch to messages ready for their connections.

    render_batch(claimed) ──▶ load the campaign versions its messages froze and their
                              templates (both immutable: cached, compiled), contacts, and
                              each version's connection, its orgs' active DKIM keys
                              (`dispatcher/loading.py`; loaded keys kept, `KeyCache`)
                          ──▶ per message: context ──▶ invite link, play URL
                              ──▶ render (sandboxed); a text part from HTML-only
                              ──▶ click tracking, open pixel
                              ──▶ SMS text (no longer than its connection's
                                  max_segments), or email MIME with the list headers,
                                  DKIM-signed when its From domain has a key
                          ──▶ Rendered: messages grouped by connection, links to store,
                              and an outcome (failed) for each that could not be rendered

A message renders the campaign and template versions its send froze when it was accepted
(`campaigns.versions`): they never change, so a worker keeps them, compiled, between
batches; only contacts and connections are read per batch. A batch whose templates run
code (filters, tags, loops) or that builds invite URLs renders in a thread, `RENDER_SLICE`
messages at a time, so the event loop keeps the batch on the wire meanwhile (the loop
overlaps two) going, whatever an org's template costs: a render is bounded
(`content/budget.py`) but not preemptible. A batch of substitution-only templates renders
on the loop, a slice at a time: lookups cost what the values they print cost. A campaign
whose renders went over their budget for more than `max_render_seconds` in all fails the
rest of its messages in the batch with the same reason, unrendered, so that a runaway
template costs its batch about twice its time limit, not once per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings import metrics
from tidings.campaigns.models import CampaignVersion
from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    SendError,
    TransientSendError,
    internal_error,
)
from tidings.channels.registry import SINK, ConnectionSpec, max_segments
from tidings.connections import health
from tidings.content import mime, sms
from tidings.content.context import render_context
from tidings.content.footer import with_unsubscribe_line
from tidings.content.plaintext import html_to_text
from tidings.content.render import Compiled, OverBudget, Renderer, TemplateError
from tidings.content.tracking import add_open_pixel, rewrite_links
from tidings.db.availability import unavailable
from tidings.db.engine import Database
from tidings.dispatcher import loading
from tidings.dispatcher.templates import CompiledTemplate, TemplateCache
from tidings.domains.signing import NO_SIGNING, ActiveKey, KeyCache, Signer
from tidings.links.service import INVITE_POSITION, click_url, open_url, play_url, unsubscribe_url
from tidings.links.tokens import TokenSigner
from tidings.outbox.queue import Claimed

log = logging.getLogger(__name__)
_PERMANENT: dict[type[Exception], str] = {
    TemplateError: "template", mime.HeaderInjection: "header", mime.Undeliverable: "address",
    PermanentSendError: "refused",
}  # fmt: skip
"""What fails a message at once when rendering it raises it (the metric's label)."""


def _as_failure(message: Claimed, exc: Exception) -> SendError:
    """The result of a message that could not be rendered: permanent for what no retry
    mends (`_PERMANENT`), else a transient "internal error", logged with its traceback."""
    for cls, kind in _PERMANENT.items():
        if isinstance(exc, cls):
            metrics.RENDER_FAILURES.labels(message.channel, kind).inc()
            if isinstance(exc, SendError):
                return exc
            return PermanentSendError(getattr(exc, "reason", None) or str(exc))
    metrics.RENDER_FAILURES.labels(message.channel, "internal").inc()
    log.exception(
        "message %d could not be rendered", message.id, exc_info=exc,
        extra={"message_id": message.id, "org_id": message.org_id,
               "broadcast_id": message.broadcast_id},
    )  # fmt: skip
    return TransientSendError(internal_error(exc))


# Messages rendered per trip to the rendering thread.
RENDER_SLICE = 64
VERSION_CACHE = 1_000
"""Campaign versions kept between batches; past this many, only the batch's own."""

Link = dict[str, Any]
"""A link row to store: message_id, position, org_id, url, clicks."""
Failure = tuple[Claimed, SendError]


@dataclass(slots=True)
class Rendered:
    """A batch ready for its connections: the messages that failed while rendering (with
    their error), the links to store, and the messages by connection (None: the sink)."""

    failures: list[tuple[Claimed, SendError]]
    links: list[Link]
    by_channel: dict[int | None, list[tuple[Claimed, Outgoing]]]
    specs: dict[int | None, ConnectionSpec]

    def outgoing(self) -> list[tuple[Claimed, Outgoing]]:
        """Every rendered message, whatever its connection."""
        return [pair for pairs in self.by_channel.values() for pair in pairs]

    def fail(self, message_ids: set[int], error: SendError) -> None:
        """These rendered messages are not handed over: each fails with `error` instead,
        and their links are not stored."""
        if not message_ids:
            return
        for route, pairs in list(self.by_channel.items()):
            self.failures += [(m, error) for m, _ in pairs if m.id in message_ids]
            self.by_channel[route] = [(m, o) for m, o in pairs if m.id not in message_ids]
        self.links = [link for link in self.links if link["message_id"] not in message_ids]


def _too_long(outgoing: Outgoing, route: ConnectionSpec) -> PermanentSendError | None:
    """The failure of an SMS of more segments than its connection sends whole: a
    gateway would cut it short, or drop it, and may still say it was sent."""
    if outgoing.segments is None:
        return None
    limit = max_segments(route)
    if limit is None or outgoing.segments <= limit:
        return None
    return PermanentSendError(
        f"the text takes {outgoing.segments} SMS segments; this connection sends at most "
        f"{limit} (its max_segments)"
    )


def list_id(campaign: CampaignVersion, domain: str) -> str:
    """The List-Id of a marketing campaign's mail (RFC 2919): one list per campaign,
    `<campaign-ID.org-ID.sending-domain>`, by ids (a campaign's name may change, its
    list must not). Receivers group and filter by it, and trust list mail that says
    which list it is."""
    return f"<campaign-{campaign.campaign_id}.org-{campaign.org_id}.{domain}>"


def unrendered(claimed: Sequence[Claimed], exc: Exception) -> Rendered:
    """A batch whose rendering as a whole raised `exc` (loading its campaigns, templates or
    contacts): while the database cannot be reached, every message waits its turn again,
    its attempt given back (nothing was handed over); anything else is a bug, logged, and
    costs each message an attempt, so that it fails after `max_attempts`, not loops."""
    error: SendError
    if unavailable(exc):
        log.warning("a batch of %d could not be rendered: the database is unavailable (%r)",
                    len(claimed), exc)  # fmt: skip
        error = TransientSendError("not rendered: the database is unavailable", attempted=False)
    else:
        log.exception("a batch of %d could not be rendered", len(claimed), exc_info=exc)
        for message in claimed:
            metrics.RENDER_FAILURES.labels(message.channel, "internal").inc()
        error = TransientSendError(internal_error(exc))
    return Rendered([(message, error) for message in claimed], [], {}, {None: SINK})


@dataclass(slots=True)
class _Batch:
    """What rendering a batch reads, and the time each campaign spent on renders over
    budget (with the last such error)."""

    campaigns: dict[int, CampaignVersion]
    templates: dict[int, CompiledTemplate]
    contacts: dict[int, dict[str, Any]]
    date: datetime  # one Date header per batch: formatted once
    signer: Signer  # the batch's DKIM keys, as active when it was read
    over_budget: dict[int | None, tuple[float, OverBudget]] = field(default_factory=dict)


class MessageRenderer:
    """Renders claimed messages for one worker, keeping compiled templates between
    batches. `public_url` and `signer` make the links (click, open, play, unsubscribe,
    invite) the messages carry."""

    def __init__(
        self,
        db: Database,
        *,
        renderer: Renderer,
        signer: TokenSigner,
        public_url: str,
        clock: Callable[[], datetime],
        max_attempts: int,
        probes: int = 1,
    ) -> None:
        """`probes`: messages a batch sends through each half-open connection."""
        self.db = db
        self.max_attempts = max_attempts
        self.probes = probes
        self.renderer = renderer
        self.signer = signer
        self.public_url = public_url
        self.clock = clock
        self.templates = TemplateCache(renderer)
        self.dkim = KeyCache()
        self._versions: dict[int, CampaignVersion] = {}
        self._invite_urls: dict[int, Compiled] = {}  # by campaign version

    async def render_batch(self, claimed: Sequence[Claimed]) -> Rendered:
        """Each message rendered and routed to its connection. A message that cannot be
        rendered fails alone, with its error as its result (`Rendered.failures`): a
        permanent one for what no retry mends (a template error, a template over its
        budget, an unsafe header, an address no message can be built for, no outcome
        after `max_attempts` claims), a transient "internal error" for anything unexpected
        (logged with its traceback), so that it is retried, then failed, like any other
        attempt."""
        campaigns, templates, contacts, routes, active = await self._load(claimed)
        orgs = {m.org_id for m in claimed if m.channel == "email"}
        failures: list[tuple[Claimed, SendError]] = []
        chosen, claimed = self._route(claimed, routes, failures)
        links: list[Link] = []
        by_channel: dict[int | None, list[tuple[Claimed, Outgoing]]] = defaultdict(list)
        date = self.clock()
        signer = self.dkim.signer(active, orgs=orgs, timestamp=int(date.timestamp()))
        batch = _Batch(campaigns, templates, contacts, date=date, signer=signer)
        # Substitution-only templates (most campaigns) cost what the values they print
        # cost: they render on the loop, which is faster than a thread's hand-offs (about
        # a fifth of `bench/quick.py`'s throughput). Any template that runs code, and any
        # invite URL, renders in the thread, where its budget cannot stall the loop.
        on_loop = all(  # `campaigns` are this batch's; `templates`, every one kept
            c.invite_url is None
            and (t := templates.get(c.template_version_id)) is not None
            and t.substitution_only
            for c in campaigns.values()
        )
        specs = {None: SINK} | {s.id: s for listed in routes.by_version.values() for s in listed}
        for start in range(0, len(claimed), RENDER_SLICE):
            part = claimed[start : start + RENDER_SLICE]
            if on_loop:
                await asyncio.sleep(0)  # the batch on the wire reads replies, sends more
                results = self._render_slice(part, batch)
            else:
                results = await asyncio.to_thread(self._render_slice, part, batch)
            for message, result in results:
                if isinstance(result, SendError):
                    failures.append((message, result))
                    continue
                outgoing, message_links = result
                route = specs[chosen[message.id]]
                too_long = _too_long(outgoing, route)
                if too_long is not None:
                    failures.append((message, too_long))
                    continue
                links.extend(message_links)
                by_channel[route.id].append((message, outgoing))
        return Rendered(failures, links, by_channel, specs)

    def _route(
        self, claimed: Sequence[Claimed], routes: loading.Routes, failures: list[Failure]
    ) -> tuple[dict[int, int | None], list[Claimed]]:
        """Each message's connection for this attempt (`connections.health.route`: its
        turn in its campaign's list, past open breakers; a test key's: the sink), and the
        messages to render. One whose every connection is open is not rendered: it waits,
        its attempt given back, until the soonest reopens (at least a second)."""
        now = self.clock()
        probes = dict.fromkeys(routes.health, self.probes)
        chosen: dict[int, int | None] = {}
        kept: list[Claimed] = []
        lists = {  # each version's connection ids, once per batch; the sink's: none
            version: [spec.id for spec in specs if spec.id is not None]
            for version, specs in routes.by_version.items()
            if specs[0].id is not None
        }
        for message in claimed:
            ids = lists.get(message.campaign_version_id or 0)
            if message.is_test or ids is None:
                chosen[message.id] = None  # the sink (or no campaign: render refuses it)
                kept.append(message)
                continue
            found = health.route(
                ids, attempts=message.attempts, states=routes.health, now=now, probes=probes
            )
            if isinstance(found, health.Closed):
                wait = max((found.until - now).total_seconds(), 1.0)
                failures.append((message, TransientSendError(
                    f"every connection of its campaign is open (circuit breaker) until "
                    f"{found.until.isoformat(timespec='seconds')}",
                    attempted=False, retry_after=wait,
                )))  # fmt: skip
                continue
            chosen[message.id] = found
            kept.append(message)
        return chosen, kept

    def _render_slice(
        self, messages: Sequence[Claimed], batch: _Batch
    ) -> list[tuple[Claimed, tuple[Outgoing, list[Link]] | SendError]]:
        """`render` of each message (in the rendering thread), or the error it failed with."""
        results: list[tuple[Claimed, tuple[Outgoing, list[Link]] | SendError]] = []
        for message in messages:
            try:
                if message.attempts > self.max_attempts:  # claimed that often, never recorded
                    raise PermanentSendError(
                        f"no outcome after {self.max_attempts} attempts (each claim ended "
                        "without one: the worker stopped or stalled)"
                    )
                results.append((message, self._within_budget(message, batch)))
            except Exception as exc:
                results.append((message, _as_failure(message, exc)))
        return results

    def _within_budget(self, message: Claimed, batch: _Batch) -> tuple[Outgoing, list[Link]]:
        """`render`, unless the message's campaign already spent its time limit on renders
        over budget in this batch: then the campaign's last such error, unrendered."""
        spent = batch.over_budget.get(message.campaign_id)
        if spent is not None and spent[0] > self.renderer.limits.max_render_seconds:
            error = spent[1]
            raise OverBudget(error.field, error.reason, error.kind)
        try:
            return self.render(
                message,
                batch.campaigns,
                batch.templates,
                batch.contacts,
                date=batch.date,
                signer=batch.signer,
            )
        except OverBudget as exc:
            # The render's own work, as its budget read the thread's CPU clock: reading it
            # here around every render was a system call a message (`content.budget`).
            seconds = exc.seconds + (spent[0] if spent else 0.0)
            batch.over_budget[message.campaign_id] = (seconds, exc)
            raise

    def render(
        self,
        message: Claimed,
        campaigns: dict[int, CampaignVersion],
        templates: dict[int, CompiledTemplate],
        contacts: dict[int, dict[str, Any]],
        *,
        date: datetime,
        signer: Signer = NO_SIGNING,
    ) -> tuple[Outgoing, list[Link]]:
        """The message to hand to the channel (email: dated `date`, signed by `signer`'s
        keys of its From domain), and the links to store for it. `campaigns`: campaign
        versions by id."""
        if message.recipient is None or message.campaign_version_id not in campaigns:
            raise PermanentSendError("nothing to send: no recipient or campaign")
        campaign = campaigns[message.campaign_version_id]
        template = templates[campaign.template_version_id]
        contact = contacts.get(message.contact_id) if message.contact_id is not None else None
        context = render_context(contact, message.variables)
        links = self._personal_links(message, campaign, template, context)
        rendered = self.renderer.render_parts(template.parts, context, strict=False)
        if template.text_from_html and "html" in rendered:
            rendered["text"] = html_to_text(rendered["html"])
        if campaign.track_clicks or campaign.track_opens:
            rendered = self._tracked(message, campaign, rendered, links)
        if message.channel == "sms":
            text = rendered.get("text", "")
            return Outgoing(
                message_id=message.id,
                org_id=message.org_id,
                channel="sms",
                sender=campaign.sms_sender,
                recipient=message.recipient,
                subject=None,
                content=text,
                segments=sms.shape(text).segments,
            ), links
        return self._email(message, campaign, contact, rendered, date=date, signer=signer), links

    def _personal_links(
        self,
        message: Claimed,
        campaign: CampaignVersion,
        template: CompiledTemplate,
        context: dict[str, Any],
    ) -> list[Link]:
        """Side effect: `invite_link` and `play_url` put in `context` when the campaign
        has them. Returns the invite's link row to store (none without one)."""
        links: list[Link] = []
        if campaign.invite_url is not None:
            invite = self._invite(message, campaign, context)
            if invite is not None:
                context["invite_link"] = click_url(
                    self.signer, self.public_url, message.id, INVITE_POSITION
                )
                links.append(invite)
        if campaign.track_opens and "play_url" in template.names:  # a token costs µs
            context["play_url"] = play_url(self.signer, self.public_url, message.id)
        return links

    def _tracked(
        self,
        message: Claimed,
        campaign: CampaignVersion,
        rendered: dict[str, str],
        links: list[Link],
    ) -> dict[str, str]:
        """The rendered parts with links rewritten to `/l/{token}` (their originals added
        to `links`) and the open pixel added, as the campaign tracks clicks and opens."""
        if campaign.track_clicks:
            rendered, originals = rewrite_links(
                rendered,
                lambda position: click_url(self.signer, self.public_url, message.id, position),
                own=f"{self.public_url.rstrip('/')}/",
            )
            links += [
                {"message_id": message.id, "position": position, "org_id": message.org_id,
                 "url": url, "clicks": 0}
                for position, url in enumerate(originals)
            ]  # fmt: skip
        if campaign.track_opens and "html" in rendered:
            rendered["html"] = add_open_pixel(
                rendered["html"], open_url(self.signer, self.public_url, message.id)
            )
        return rendered

    def _email(
        self,
        message: Claimed,
        campaign: CampaignVersion,
        contact: dict[str, Any] | None,
        rendered: dict[str, str],
        *,
        date: datetime,
        signer: Signer,
    ) -> Outgoing:
        """The email's MIME, with the unsubscribe headers and line for marketing, signed
        with the DKIM keys of its From domain (if any)."""
        assert message.recipient is not None
        sender = mime.Address(campaign.from_email or "", campaign.from_name)
        domain = mime.sending_domain(sender.email)
        headers: tuple[tuple[str, str], ...] = ()
        if campaign.purpose == "marketing":
            url = unsubscribe_url(self.signer, self.public_url, message.id)
            headers = (
                ("List-Id", list_id(campaign, domain)),
                ("List-Unsubscribe", f"<{url}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            )
            rendered = with_unsubscribe_line(rendered, url, campaign.language)
        message_id = mime.new_message_id(domain)
        name = " ".join(
            p for p in ((contact or {}).get("first_name"), (contact or {}).get("last_name")) if p
        )
        email = mime.Email(
            sender=sender,
            to=mime.Address(message.recipient, name or None),
            subject=rendered.get("subject", ""),
            text=rendered.get("text"),
            html=rendered.get("html"),
            message_id=message_id,
            date=date,
            reply_to=mime.Address(campaign.reply_to) if campaign.reply_to else None,
            headers=headers,
        )
        return Outgoing(
            message_id=message.id,
            org_id=message.org_id,
            channel="email",
            sender=sender.email,
            recipient=message.recipient,
            subject=email.subject,
            content=signer.sign(message.org_id, sender.email, mime.build(email)),
            email_message_id=message_id,
        )

    async def _load(
        self, claimed: Sequence[Claimed]
    ) -> tuple[
        dict[int, CampaignVersion],
        dict[int, CompiledTemplate],
        dict[int, dict[str, Any]],
        loading.Routes,
        list[ActiveKey],
    ]:
        """The batch's campaign versions and compiled templates (loading and compiling
        the ones not kept yet), its contacts, each version's connection, and the active
        DKIM keys of its email's orgs (loading the ones not kept yet), in one read
        transaction."""
        version_ids = {m.campaign_version_id for m in claimed if m.campaign_version_id}
        contact_ids = {m.contact_id for m in claimed if m.contact_id is not None}
        async with self.db.session() as session:
            missing = version_ids - self._versions.keys()
            if len(self._versions) + len(missing) > VERSION_CACHE:
                self._versions = {v: c for v, c in self._versions.items() if v in version_ids}
            if missing:
                self._versions.update(await loading.campaign_versions(session, missing))
            versions = {v: self._versions[v] for v in version_ids if v in self._versions}
            templates = await self.templates.get(
                session, {v.template_version_id for v in versions.values()}
            )
            contacts = await loading.contact_fields(session, contact_ids)
            routes = await loading.connection_routes(session, versions.values())
            active = await loading.active_dkim_keys(
                session, {m.org_id for m in claimed if m.channel == "email"}
            )
            missing = self.dkim.missing(active)
            if missing:
                self.dkim.load(active, await loading.dkim_private_keys(session, missing))
        return versions, templates, contacts, routes, active

    def _invite(
        self, message: Claimed, campaign: CampaignVersion, context: dict[str, Any]
    ) -> Link | None:
        """The stored link behind this message's `{{ invite_link }}`: the campaign's
        `invite_url` rendered for the recipient; None if that is not an http(s) URL."""
        assert campaign.invite_url is not None
        compiled = self._invite_urls.get(campaign.id)
        if compiled is None:
            if len(self._invite_urls) > VERSION_CACHE:
                self._invite_urls.clear()
            compiled = self.renderer.compile(campaign.invite_url, field="invite_url", html=False)
            self._invite_urls[campaign.id] = compiled
        url = self.renderer.render(compiled, context, strict=False).strip()
        if not url.lower().startswith(("http://", "https://")):
            return None
        return {"message_id": message.id, "position": INVITE_POSITION,
                "org_id": message.org_id, "url": url, "clicks": 0}  # fmt: skip
