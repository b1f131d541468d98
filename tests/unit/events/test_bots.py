"""The bot rule: which tracking hits are machines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings.events.bots import bot_reason

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR_AGO = NOW - timedelta(hours=1)
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
APPLE_PROXY_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)


@pytest.mark.parametrize(
    ("method", "agent", "ip", "sent_at", "reason"),
    [
        ("GET", SAFARI, "203.0.113.9", HOUR_AGO, None),
        ("HEAD", SAFARI, "203.0.113.9", HOUR_AGO, "head"),
        ("GET", None, "203.0.113.9", HOUR_AGO, "user_agent"),
        ("GET", "", "203.0.113.9", HOUR_AGO, "user_agent"),
        (
            "GET",
            "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
            "1.2.3.4",
            HOUR_AGO,
            "user_agent",
        ),
        ("GET", "python-requests/2.32", "1.2.3.4", HOUR_AGO, "user_agent"),
        (
            "GET",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:11.0) like Gecko Mimecast",
            None,
            HOUR_AGO,
            "user_agent",
        ),
        ("GET", APPLE_PROXY_UA, "17.58.100.3", HOUR_AGO, "apple_privacy"),
        ("GET", "Mozilla/5.0", "::ffff:17.1.2.3", HOUR_AGO, "apple_privacy"),
        ("GET", SAFARI, "17.58.100.3", HOUR_AGO, None),  # a real Safari on Apple's network
        ("GET", APPLE_PROXY_UA, "18.0.0.1", HOUR_AGO, None),
        ("GET", SAFARI, "203.0.113.9", NOW - timedelta(seconds=1), "too_soon"),
        ("GET", SAFARI, "203.0.113.9", NOW - timedelta(seconds=4), None),
        ("GET", SAFARI, "not an ip", None, None),
    ],
)
def test_bot_reason(
    method: str, agent: str | None, ip: str | None, sent_at: datetime | None, reason: str | None
) -> None:
    found = bot_reason(method=method, user_agent=agent, client_ip=ip, sent_at=sent_at, now=NOW)
    assert found == reason
