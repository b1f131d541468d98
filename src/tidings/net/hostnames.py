"""The name Tidings gives itself in SMTP's EHLO: what receiving servers accept.

Receivers refuse, or score as spam, a HELO that is not a fully qualified domain name
(Postfix's `reject_non_fqdn_helo_hostname`: `504 5.5.2 <localhost>: Helo command
rejected`) or that is `localhost`. RFC 5321 §4.1.1.1 asks for the client's fully
qualified domain name, or an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) when
it has none.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

__all__ = ["fqdn_of_url", "helo_name", "is_fqdn"]

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def is_fqdn(name: str) -> bool:
    """Whether `name` is a fully qualified domain name: two labels or more, letters,
    digits and inner hyphens, a top label that is not all digits, and not a name of
    this host alone (`localhost`, `*.localhost`, RFC 6761)."""
    name = name.removesuffix(".")
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    if labels[-1].isdigit():
        return False
    return labels[-1].lower() != "localhost"


def _is_address_literal(name: str) -> bool:
    if not (name.startswith("[") and name.endswith("]")):
        return False
    inner = name[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return ipaddress.ip_address(inner[5:]).version == 6
        return ipaddress.ip_address(inner).version == 4
    except ValueError:
        return False


def helo_name(value: str) -> str:
    """A HELO name as set (a setting, a connection's `helo_name`): ValueError (a 422
    naming the field) unless it is a fully qualified domain name or an address literal."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError("CR, LF or NUL cannot be in a HELO name")
    if not (is_fqdn(value) or _is_address_literal(value)):
        raise ValueError(
            "must be a fully qualified domain name (mail.example.com) or an address "
            "literal ([192.0.2.1], [IPv6:2001:db8::1]); receivers refuse a bare name "
            "or localhost"
        )
    return value.removesuffix(".")


def fqdn_of_url(url: str) -> str | None:
    """The host of `url` when it is a fully qualified domain name, else None."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host if host and is_fqdn(host) else None
