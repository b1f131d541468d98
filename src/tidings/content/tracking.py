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
    parts: dict[str, str], redirect: Callable[[int], str], *, own: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """`parts` with links replaced by `redirect(position)`, and the original URLs by position.

    Links starting with `own` (Tidings' public URL) are already ours, such as an invite
    link, and stay as they are: wrapping them would add a redirect and count a click twice.
    """
    originals: list[str] = []
    positions: dict[str, int] = {}

    def position_of(url: str) -> int:
        if url not in positions:
            positions[url] = len(originals)
            originals.append(url)
        return positions[url]

    def ours(url: str) -> bool:
        return own is not None and url.startswith(own)

    def href(m: re.Match[str]) -> str:
        url = html.unescape(m[3])
        return m[0] if ours(url) else f"{m[1]}{m[2]}{redirect(position_of(url))}{m[2]}"

    out = dict(parts)
    if "html" in out:
        out["html"] = _HREF.sub(href, out["html"])
    if "text" in out:
        out["text"] = _TEXT_URL.sub(
            lambda m: m[0] if ours(m[0]) else redirect(position_of(m[0])), out["text"]
        )
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
