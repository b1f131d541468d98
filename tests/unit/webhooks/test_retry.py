from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tidings.webhooks.delivery import RetryPolicy

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_backoff_grows_with_jitter_and_stops_a_day_after_creation() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    now, attempts, waits = T0, 0, []
    while True:
        attempts += 1
        at = policy.next_attempt(attempts=attempts, created_at=T0, now=now, rng=rng)
        if at is None:
            break
        waits.append((at - now).total_seconds())
        now = at
    assert 4.5 <= waits[0] <= 5.5
    assert 27 <= waits[1] <= 33
    assert 108 <= waits[2] <= 132
    assert waits == sorted(waits[:9]) + waits[9:]  # grows, then repeats the last delay
    assert now <= T0 + timedelta(days=1)
    assert now + timedelta(seconds=policy.delays[-1] * 0.9) > T0 + timedelta(days=1)
    assert 9 <= attempts <= 13
