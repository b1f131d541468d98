"""What a server a tenant chose said, as Tidings shows it back to the tenant.

A provider's reply, a gateway's error page, a webhook receiver's redirect: the tenant
picked the server, so its words reach the tenant's answers (a message's `reason` and
`provider_id`, a delivery's `last_error`) — but only as an excerpt: one printable line
of bounded length. Whatever answers at an address cannot turn those fields into a
channel for a whole document, nor put control characters into answers and log lines.
"""

from __future__ import annotations

import re
from typing import Final

EXCERPT_CHARS: Final = 200
_SPACE = re.compile(r"\s+")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` as one printable line of at most `limit` characters: runs of white space
    become one space, other control characters "?", and a longer text ends with "…"."""
    if len(text) <= limit and text.isprintable() and text == text.strip():
        return text  # the usual case, on the hot path of every sent message
    flat = _UNPRINTABLE.sub("?", _SPACE.sub(" ", text)).strip()
    if len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat
