"""Compiled templates kept between batches: a template version never changes, so it is
compiled once per worker, whatever the number of messages that use it.

An email template with HTML and no text gets a text part (`content/plaintext.py`): when
its HTML only substitutes values, the text is made once here, from the HTML's source,
and compiled as a text part (its values unescaped), so a message costs a substitution;
otherwise each message's rendered HTML is converted (`text_from_html`), in the
rendering thread those templates render in."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.content.plaintext import html_to_text
from tidings.content.render import Compiled, Renderer, TemplateError
from tidings.dispatcher import loading
from tidings.templates.models import TemplateVersion

TEMPLATE_CACHE = 1_000
"""Single sends with inline content make one template per distinct content, so past this
many compiled templates the cache keeps only the batch's own."""


@dataclass(slots=True)
class CompiledTemplate:
    parts: dict[str, Compiled]
    names: frozenset[str] = frozenset()  # what its parts read from the context
    # HTML only, and not substitution-only: each message's text is its rendered HTML's.
    text_from_html: bool = False

    @property
    def substitution_only(self) -> bool:
        """Every part renders by lookups alone (`Compiled.substitution_only`)."""
        return all(part.substitution_only for part in self.parts.values())


class TemplateCache:
    """One worker's compiled templates, by template version id."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._templates: dict[int, CompiledTemplate] = {}

    async def get(
        self, session: AsyncSession, version_ids: Collection[int]
    ) -> dict[int, CompiledTemplate]:
        """The cache with `version_ids` compiled (read only: only the versions not compiled
        yet are loaded; none in the steady state)."""
        missing = [v for v in version_ids if v not in self._templates]
        if len(self._templates) + len(missing) > TEMPLATE_CACHE:
            self._templates = {v: c for v, c in self._templates.items() if v in version_ids}
        if missing:
            for version in await loading.template_versions(session, missing):
                # In a thread: compiling a large template takes seconds, during which the
                # event loop keeps the batch on the wire going.
                self._templates[version.id] = await asyncio.to_thread(self._compile, version)
        return self._templates

    def _compile(self, version: TemplateVersion) -> CompiledTemplate:
        parts = {}
        for part, html in (("subject", False), ("html", True), ("text", False)):
            source = getattr(version, part)
            if source is not None:
                parts[part] = self.renderer.compile(source, field=part, html=html)
        text_from_html = False
        if version.html is not None and version.text is None:
            derived = self._derived_text(version.html, parts["html"])
            if derived is None:
                text_from_html = True
            else:
                parts["text"] = derived
        names = frozenset().union(*(compiled.names for compiled in parts.values()))
        return CompiledTemplate(parts=parts, names=names, text_from_html=text_from_html)

    def _derived_text(self, html: str, compiled: Compiled) -> Compiled | None:
        """The text part made from a substitution-only HTML source, itself substitution
        only; None when it cannot be made once for all messages."""
        if not compiled.substitution_only:
            return None
        try:
            text = self.renderer.compile(html_to_text(html), field="text", html=False)
        except TemplateError:  # the HTML's text spelt template syntax with entities
            return None
        return text if text.substitution_only else None
