"""When to try a transiently failed message again: a pure value object."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; a provider's Retry-After wins when longer.

    Attempt n (1-based, the one that just failed) waits base × 2^(n−1) seconds, ±jitter,
    at most `cap`. After `max_attempts` attempts the message fails for good.
    """

    max_attempts: int = 8
    base_seconds: float = 30.0
    cap_seconds: float = 3_600.0
    jitter: float = 0.2

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(
        self, attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        spread = backoff * self.jitter
        backoff += (rng or random).uniform(-spread, spread)
        return float(max(backoff, retry_after or 0.0))
