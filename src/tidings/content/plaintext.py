"""The text/plain part of an email whose template has HTML only.

    html_to_text(html) ──▶ lxml parses it ──▶ each link's target written after its text,
                           "our news (https://example.com/news)" ──▶ inscriptis lays the
                           tree out as text (paragraphs, lists, tables; no styles, scripts)

A message with a text part next to its HTML reads as a normal message to spam filters
(an HTML-only body, the more so a short one with an image, scores as likely spam), and
shows in clients that display text. inscriptis (Apache-2.0, maintained) lays the HTML
out; html2text, the better known, is GPL-3.0, which an Apache-2.0 service cannot ship.

A link whose text is its target is written once. A link to a template value
(`href="{{ url }}"`) keeps the placeholder, so text made from a template's source
renders like the HTML (`dispatcher/templates.py` does that for substitution-only
templates, once per template; other templates convert each rendered HTML).
"""

from __future__ import annotations

from typing import Any

from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig
from lxml.etree import ParserError
from lxml.html import document_fromstring

__all__ = ["html_to_text"]

_CONFIG = ParserConfig()
_SHOWN = ("http://", "https://", "{{")  # link targets worth reading: not anchors, mailto:


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of `html`; "" for a document with no text."""
    if not html.strip():
        return ""
    try:
        root: Any = document_fromstring(html)
    except (ParserError, ValueError):  # nothing lxml can read as a document
        return ""
    for link in root.iter("a"):
        href = (link.get("href") or "").strip()
        if not href.lower().startswith(_SHOWN):
            continue
        if link.text_content().strip() == href:
            continue
        link.tail = f" ({href}){link.tail or ''}"
    text: str = Inscriptis(root, _CONFIG).get_text()
    # Lines as a reader sees them: no trailing blanks, no run of more than one empty line.
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n" if out else ""
