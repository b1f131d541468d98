"""Which tracking hits are machines, not people: one pure rule, no I/O.

Mail scanners (corporate gateways, antivirus, link-safety services) fetch every link and
image of a message as it arrives, and Apple Mail Privacy Protection fetches every image
through Apple's proxies whether or not the message is ever read. Counting those as human
opens and clicks would make every campaign look read. A hit is a bot when the first of
these applies (the reason is stored on the event as `data.bot`):

- `head`: the request is a HEAD (browsers GET; link checkers and scanners probe with
  HEAD);
- `user_agent`: no User-Agent, or one naming a known scanner, crawler or HTTP library;
- `apple_privacy`: the client is in Apple's 17.0.0.0/8 and its User-Agent is the
  generic one Apple's proxy sends (no browser name or version);
- `too_soon`: within `TOO_SOON` seconds of the message being sent: no person opens that
  fast, a gateway scanning mail on arrival does.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from typing import Final

TOO_SOON: Final = timedelta(seconds=3)
APPLE: Final = ipaddress.ip_network("17.0.0.0/8")

_SCANNERS: Final = re.compile(
    r"bot|crawl|spider|slurp|preview|scan|proofpoint|mimecast|barracuda|symantec|"
    r"messagelabs|trendmicro|forcepoint|sophos|fortinet|cisco|ironport|zscaler|"
    r"safelinks|urldefense|googleimageproxy|yahoomailproxy|headless|phantomjs|"
    r"python-|curl/|wget/|go-http-client|java/|okhttp|libwww|httpclient|axios|node-fetch",
    re.IGNORECASE,
)
_BROWSER: Final = re.compile(r"safari/|version/|chrome/|firefox/|edg/|mobile/", re.IGNORECASE)


def bot_reason(
    *,
    method: str,
    user_agent: str | None,
    client_ip: str | None,
    sent_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why this hit is a bot's (see the module's table), or None for a person's."""
    if method.upper() == "HEAD":
        return "head"
    agent = (user_agent or "").strip()
    if not agent or _SCANNERS.search(agent):
        return "user_agent"
    if _is_apple(client_ip) and not _BROWSER.search(agent):
        return "apple_privacy"
    if sent_at is not None and now - sent_at < TOO_SOON:
        return "too_soon"
    return None


def _is_apple(client_ip: str | None) -> bool:
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in APPLE
