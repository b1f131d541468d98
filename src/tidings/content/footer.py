"""The visible unsubscribe line every marketing email carries (besides the headers)."""

from __future__ import annotations

from html import escape

TEXT_LINE = "\n\n--\nTo stop receiving these emails: {url}\n"
HTML_LINE = (
    '<p style="font-size:12px;color:#666"><a href="{url}">Unsubscribe</a> from these emails.</p>'
)


def with_unsubscribe_line(parts: dict[str, str], url: str) -> dict[str, str]:
    """`parts` with the line added to the text and HTML bodies (inside </body> if any)."""
    out = dict(parts)
    if "text" in out:
        out["text"] = out["text"].rstrip("\n") + TEXT_LINE.format(url=url)
    if "html" in out:
        line = HTML_LINE.format(url=escape(url, quote=True))
        html = out["html"]
        at = html.lower().rfind("</body>")
        out["html"] = html[:at] + line + html[at:] if at >= 0 else html + line
    return out
