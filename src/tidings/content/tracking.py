"""Tracking: rewrite a message's links to signed `/l/{token}` redirects; add an open pixel.

HTML: every `<a href="http(s)://…">`. Text: every bare http(s) URL. The same URL in both
parts gets one position. The originals are returned to be stored server-side. The open
pixel is a 1×1 image of the message's signed `/o/{token}`, HTML only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'\s]+)\2""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+[^\s<>"'.,;:!?)\]]""")


def rewrite_links(
    parts: dict[str, str], redirect: Callable[[int], str]
) -> tuple[dict[str, str], list[str]]:
    """`parts` with links replaced by `redirect(position)`, and the original URLs by position."""
    originals: list[str] = []
    positions: dict[str, int] = {}

    def position_of(url: str) -> int:
        if url not in positions:
            positions[url] = len(originals)
            originals.append(url)
        return positions[url]

    out = dict(parts)
    if "html" in out:
        out["html"] = _HREF.sub(
            lambda m: f"{m[1]}{m[2]}{redirect(position_of(html.unescape(m[3])))}{m[2]}",
            out["html"],
        )
    if "text" in out:
        out["text"] = _TEXT_URL.sub(lambda m: redirect(position_of(m[0])), out["text"])
    return out, originals


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def add_open_pixel(html_part: str, url: str) -> str:
    """`html_part` with a 1×1 image of `url` before `</body>` (else at the end)."""
    pixel = (
        f'<img src="{html.escape(url)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
    ends = list(_BODY_END.finditer(html_part))
    if not ends:
        return html_part + pixel
    at = ends[-1].start()
    return html_part[:at] + pixel + html_part[at:]
