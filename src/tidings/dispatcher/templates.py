"""Compiled templates kept between batches: a template is compiled once per version (its
`updated_at`), whatever the number of messages that use it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.content.render import Compiled, Renderer
from tidings.dispatcher import loading

TEMPLATE_CACHE = 1_000
"""Single sends with inline content make one template per distinct content, so past this
many compiled templates the cache keeps only the batch's own."""


@dataclass(slots=True)
class CompiledTemplate:
    updated_at: datetime
    parts: dict[str, Compiled]
    names: frozenset[str] = frozenset()  # what its parts read from the context


class TemplateCache:
    """One worker's compiled templates, by template id."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._templates: dict[int, CompiledTemplate] = {}

    async def refresh(
        self, session: AsyncSession, template_ids: Collection[int]
    ) -> dict[int, CompiledTemplate]:
        """The cache with `template_ids` compiled at their current version (read only:
        their versions are read, and the new or changed ones loaded)."""
        versions = await loading.template_versions(session, template_ids)
        if len(self._templates) > TEMPLATE_CACHE:
            self._templates = {t: c for t, c in self._templates.items() if t in versions}
        stale = [
            tid
            for tid, at in versions.items()
            if tid not in self._templates or self._templates[tid].updated_at != at
        ]
        if stale:
            for template in await loading.templates(session, stale):
                sources = {part: getattr(template, part) for part in _PARTS}
                # In a thread: compiling a large template takes seconds, during which the
                # event loop keeps the batch on the wire going.
                compiled = await asyncio.to_thread(self._compile, sources, template.updated_at)
                self._templates[template.id] = compiled
        return self._templates

    def _compile(self, sources: dict[str, str | None], updated_at: datetime) -> CompiledTemplate:
        parts = {}
        for part, html in _PARTS.items():
            source = sources[part]
            if source is not None:
                parts[part] = self.renderer.compile(source, field=part, html=html)
        names = frozenset().union(*(compiled.names for compiled in parts.values()))
        return CompiledTemplate(updated_at=updated_at, parts=parts, names=names)


_PARTS = {"subject": False, "html": True, "text": False}  # each part, and whether it is HTML
