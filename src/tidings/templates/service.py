"""Templates: stored per org, compiled (sandboxed) on save so errors surface then, and
previewed strictly — an undefined variable is an error at preview, while at send time
it renders empty (see docs/templates.md).

A single send's inline content is stored as an inline template (`inline_template`): one
row per distinct content in the org, compiled when the send is made, never listed and
never changed, so the dispatcher renders it like any other template.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.service import get_contact
from tidings.content import sms
from tidings.content.context import render_context
from tidings.content.render import Renderer, TemplateError
from tidings.db.names import digest_name, find_or_add_named, require_free_name, unique_name
from tidings.db.owned import get_owned, owned_page
from tidings.errors import Conflict, FieldError, InvalidInput
from tidings.templates.models import Template
from tidings.templates.schemas import TemplateChanges

PARTS = (("subject", False), ("html", True), ("text", False))


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
) -> Template:
    template = Template(
        org_id=org_id, name=name, channel=channel, subject=subject, html=html, text=text
    )
    await check_compiles(renderer, template)
    await require_free_name(session, Template, org_id=org_id, name=name, what="template")
    async with unique_name(session, name=name, what="template"):
        session.add(template)
    return template


async def get_template(session: AsyncSession, *, org_id: int, template_id: int) -> Template:
    return await get_owned(session, Template, org_id=org_id, ident=template_id, what="template")


async def list_templates(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[Template]:
    page = owned_page(Template, org_id=org_id, after_id=after_id, limit=limit)
    return list(await session.scalars(page.where(Template.is_inline.is_(False))))


async def update_template(
    session: AsyncSession,
    *,
    org_id: int,
    template_id: int,
    renderer: Renderer,
    changes: TemplateChanges,
) -> Template:
    template = await get_template(session, org_id=org_id, template_id=template_id)
    if template.is_inline:
        raise Conflict(f"template {template_id} is the inline content of single sends")
    if "name" in changes:
        await require_free_name(
            session,
            Template,
            org_id=org_id,
            name=changes["name"],
            what="template",
            except_id=template_id,
        )
    async with unique_name(session, name=changes.get("name", template.name), what="template"):
        if "name" in changes:
            template.name = changes["name"]
        for part in ("subject", "html", "text"):
            if part in changes:
                setattr(template, part, changes[part])
        await check_compiles(renderer, template)
    return template


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
    sources = {part: getattr(template, part) for part, _ in PARTS}
    # In a thread, as in check_compiles: a render over its budget takes up to its time limit.
    rendered, errors = await asyncio.to_thread(_render_strictly, renderer, sources, context)
    if errors:
        raise InvalidInput(errors)
    shape = sms.shape(rendered["text"] or "") if template.channel == "sms" else None
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
