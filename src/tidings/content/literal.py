"""Literal content as a template: text a caller sent to be sent as is (seed 001's `text`),
turned into template source that renders to exactly that text, except for a few simple
`{name}` placeholders. Nothing the caller wrote is ever evaluated as Jinja.

    "Hi {first_name}, {{ code }}"  →  "Hi {{ first_name }}, {{ '{' }}{{ '{' }} code }}"
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

PLACEHOLDERS: Final = (
    "first_name", "last_name", "email", "param1", "param2", "param3", "param4", "param5",
)  # fmt: skip
_PLACEHOLDER: Final = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
# `{` opens every Jinja delimiter (`{{`, `{%`, `{#`); with none left, the rest is plain data.
_OPEN: Final = "{{ '{' }}"


def literal_source(text: str) -> str:
    """Template source rendering to `text`, each `{first_name}`-style placeholder of
    `PLACEHOLDERS` replaced by that variable (escaped in HTML, empty when missing)."""
    out = []
    for i, piece in enumerate(_PLACEHOLDER.split(text)):
        out.append("{{ " + piece + " }}" if i % 2 else piece.replace("{", _OPEN))
    return "".join(out)


_BLOCKS: Final = frozenset(
    {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML body: tags dropped, blocks on their own
    lines, entities decoded, scripts and styles left out."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
