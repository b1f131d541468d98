"""Templates: stored per org, compiled (sandboxed) on save so errors surface then, and
previewed strictly — an undefined variable is an error at preview, while at send time
it renders empty (see docs/sending.md).

Every content a template has is a version: creating it makes version 1, and each change
of its subject, HTML or text (an update, a restore) the next one. Versions never change,
and a send renders the version current when it was accepted (`campaigns.versions`).
Deleting a template hides it and keeps its versions (`retirement` checks that nothing in
flight uses it first).

A single send's inline content is stored as an inline template (`inline_template`): one
row per distinct content in the org, compiled when the send is made, never listed and
never changed, so the dispatcher renders it like any other template.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.service import get_contact
from tidings.content import sms
from tidings.content.context import render_context
from tidings.content.render import Renderer, TemplateError
from tidings.db.base import utcnow
from tidings.db.dialect import insert_ignoring_conflicts
from tidings.db.names import digest_name, find_or_add_named, require_free_name, unique_name
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.templates.models import Template, TemplateVersion
from tidings.templates.schemas import TemplateChanges, content_problem

PARTS = (("subject", False), ("html", True), ("text", False))
CONTENT = tuple(part for part, _ in PARTS)
LIVE = Template.deleted_at.is_(None)
# What the org may name: its own live templates. A single send's inline content is
# Tidings' own, so, like another org's template, it is neither listed nor found by id.
PUBLIC = LIVE & Template.is_inline.is_(False)


@dataclass(frozen=True, slots=True)
class Preview:
    subject: str | None
    html: str | None
    text: str | None
    sms: sms.SmsShape | None


async def check_compiles(renderer: Renderer, template: Template, *, prefix: str = "") -> None:
    """InvalidInput naming each part that does not compile (`prefix` + the part).
    Compiled in a thread, like a preview is rendered: a template is the org's code, whose
    cost is bounded but not preemptible (compiling a large one takes seconds), and the
    event loop serves every other request meanwhile."""
    sources = {part: getattr(template, part) for part, _ in PARTS}
    errors = await asyncio.to_thread(_compile_errors, renderer, sources, prefix)
    if errors:
        raise InvalidInput(errors)


def _compile_errors(
    renderer: Renderer, sources: dict[str, str | None], prefix: str
) -> list[FieldError]:
    errors = []
    for part, html in PARTS:
        source = sources[part]
        if source is None:
            continue
        try:
            renderer.compile(source, field=part, html=html)
        except TemplateError as exc:
            errors.append(FieldError(prefix + part, exc.reason))
    return errors


async def create_template(
    session: AsyncSession,
    *,
    org_id: int,
    renderer: Renderer,
    name: str,
    channel: str,
    subject: str | None,
    html: str | None,
    text: str | None,
    by: str | None = None,
) -> Template:
    """`by`: who makes it (`key 12`), kept on its version 1."""
    template = Template(
        org_id=org_id, name=name, channel=channel, subject=subject, html=html, text=text
    )
    await check_compiles(renderer, template)
    await require_free_name(
        session, Template, org_id=org_id, name=name, what="template", where=LIVE
    )
    async with unique_name(session, name=name, what="template"):
        session.add(template)
    session.add(version_of(template, by=by))
    await session.flush()
    return template


def version_of(template: Template, *, by: str | None) -> TemplateVersion:
    """The template's current content as its version `template.version` (flushed: the
    template has its id)."""
    return TemplateVersion(
        org_id=template.org_id,
        template_id=template.id,
        number=template.version,
        channel=template.channel,
        **{part: getattr(template, part) for part in CONTENT},
        created_by=by,
    )


async def get_template(session: AsyncSession, *, org_id: int, template_id: int) -> Template:
    """The org's template, unless deleted or inline (NotFound)."""
    return await get_owned(
        session, Template, org_id=org_id, ident=template_id, what="template", where=PUBLIC
    )


async def list_templates(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool = False,
) -> list[Template]:
    page = owned_page(
        Template, org_id=org_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    return list(await session.scalars(page.where(PUBLIC)))


async def list_versions(
    session: AsyncSession, *, org_id: int, template_id: int, after_id: int | None, limit: int
) -> list[TemplateVersion]:
    """The template's versions, oldest first (by number: their ids grow with it)."""
    await get_template(session, org_id=org_id, template_id=template_id)
    page = owned_page(TemplateVersion, org_id=org_id, after_id=after_id, limit=limit)
    return list(await session.scalars(page.where(TemplateVersion.template_id == template_id)))


async def get_version(
    session: AsyncSession, *, org_id: int, template_id: int, number: int
) -> TemplateVersion:
    """Version `number` of the org's template (NotFound for either)."""
    await get_template(session, org_id=org_id, template_id=template_id)
    found = await session.scalar(
        select(TemplateVersion).where(
            TemplateVersion.org_id == org_id,
            TemplateVersion.template_id == template_id,
            TemplateVersion.number == number,
        )
    )
    if found is None:
        raise NotFound("template version", number)
    return found


async def restore_version(
    session: AsyncSession,
    *,
    org_id: int,
    template_id: int,
    number: int,
    renderer: Renderer,
    by: str | None = None,
) -> Template:
    """The template with version `number`'s content again, as a new version (none when it
    is the current content already)."""
    version = await get_version(session, org_id=org_id, template_id=template_id, number=number)
    changes = TemplateChanges(subject=version.subject, html=version.html, text=version.text)
    return await update_template(
        session,
        org_id=org_id,
        template_id=template_id,
        renderer=renderer,
        changes=changes,
        by=by,
    )


async def update_template(
    session: AsyncSession,
    *,
    org_id: int,
    template_id: int,
    renderer: Renderer,
    changes: TemplateChanges,
    by: str | None = None,
) -> Template:
    """Rename and/or change the content; a change of content is a new version (`by`: who
    makes it). The content must still fit the channel and compile."""
    template = await get_template(session, org_id=org_id, template_id=template_id)
    if "name" in changes:
        await require_free_name(
            session,
            Template,
            org_id=org_id,
            name=changes["name"],
            what="template",
            except_id=template_id,
            where=LIVE,
        )
    content: dict[str, Any] = {part: v for part, v in changes.items() if part in CONTENT}
    changed = any(getattr(template, part) != value for part, value in content.items())
    async with unique_name(session, name=changes.get("name", template.name), what="template"):
        if "name" in changes:
            template.name = changes["name"]
        for part, value in content.items():
            setattr(template, part, value)
        check_fits(template)
        await check_compiles(renderer, template)
        if changed:
            template.version += 1
            session.add(version_of(template, by=by))
    return template


def check_fits(template: Template) -> None:
    """InvalidInput naming the part a change left missing or forbidden for the channel."""
    problem = content_problem(template.channel, template.subject, template.html, template.text)
    if problem is not None:
        raise InvalidInput.field(*problem)


def mark_deleted(template: Template) -> None:
    """Hide the template (its name free again) and keep it and its versions as history;
    the caller has checked nothing in flight uses it (`retirement`)."""
    template.deleted_at = utcnow()


async def check_inline(
    renderer: Renderer, *, channel: str, subject: str | None, html: str | None, text: str | None
) -> None:
    """InvalidInput on `content.<part>` for each part that does not compile (no I/O)."""
    template = Template(channel=channel, subject=subject, html=html, text=text)
    await check_compiles(renderer, template, prefix="content.")


async def inline_template(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    subject: str | None,
    html: str | None,
    text: str | None,
) -> Template:
    """The org's inline template with exactly this content, added if there is none (query
    helper: the caller owns the transaction, and has passed the content through
    `check_inline`)."""
    content = {"channel": channel, "subject": subject, "html": html, "text": text}
    name = digest_name("inline", content)
    template: Template = await find_or_add_named(
        session, Template, org_id=org_id, name=name, values={**content, "is_inline": True}
    )
    if not template.is_inline:  # a template of the org's own was given this very name
        raise InvalidInput.field("content", f"the org's template {template.id} is named {name!r}")
    # Its one version, added with it (raced like the template: the first insert wins).
    first = {**content, "org_id": org_id, "template_id": template.id, "number": 1,
             "created_at": utcnow()}  # fmt: skip
    await session.execute(insert_ignoring_conflicts(session, TemplateVersion).values(first))
    return template


async def preview(
    session: AsyncSession,
    *,
    org_id: int,
    template_id: int,
    renderer: Renderer,
    contact_id: int | None,
    variables: dict[str, object],
) -> Preview:
    """Render every part strictly for a contact and/or variables."""
    template = await get_template(session, org_id=org_id, template_id=template_id)
    sources = {part: getattr(template, part) for part, _ in PARTS}
    return await preview_content(session, org_id=org_id, channel=template.channel,
                                 sources=sources, renderer=renderer, contact_id=contact_id,
                                 variables=variables)  # fmt: skip


async def preview_content(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    sources: dict[str, str | None],
    renderer: Renderer,
    contact_id: int | None,
    variables: dict[str, object],
) -> Preview:
    """Render parts not saved yet (the console's editor) as `preview` renders a
    template's: strictly, in a thread, under the render budget."""
    contact = None
    if contact_id is not None:
        found = await get_contact(session, org_id=org_id, contact_id=contact_id)
        contact = {
            "email": found.email,
            "phone": found.phone,
            "first_name": found.first_name,
            "last_name": found.last_name,
            "locale": found.locale,
            "timezone": found.timezone,
            "attributes": found.attributes,
        }
    context = render_context(contact, variables)
    # In a thread, as in check_compiles: a render over its budget takes up to its time limit.
    rendered, errors = await asyncio.to_thread(_render_strictly, renderer, sources, context)
    if errors:
        raise InvalidInput(errors)
    shape = sms.shape(rendered["text"] or "") if channel == "sms" else None
    return Preview(rendered["subject"], rendered["html"], rendered["text"], shape)


def _render_strictly(
    renderer: Renderer, sources: dict[str, str | None], context: dict[str, object]
) -> tuple[dict[str, str | None], list[FieldError]]:
    rendered: dict[str, str | None] = {}
    errors = []
    for part, html in PARTS:
        source = sources[part]
        if source is None:
            rendered[part] = None
            continue
        try:
            compiled = renderer.compile(source, field=part, html=html)
            rendered[part] = renderer.render(compiled, context, strict=True)
        except TemplateError as exc:
            errors.append(FieldError(part, exc.reason))
    return rendered, errors
