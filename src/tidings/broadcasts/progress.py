"""How far a broadcast has got: done of total, the rate and the time left. A pure
function of the broadcast's row (its counters), so a page that polls it every couple of
seconds costs one row read, never a scan of its messages.

    done  = sent + failed          (the messages at an outcome)
    total = recipients             (the messages it sends; skipped ones are not counted)
    rate  = done / minutes since it started (an average over the whole send: the row
            keeps no history, and a pause counts as time)
    eta   = (total − done) / rate, while it is SENDING
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import FINAL, BroadcastStatus


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    per_minute: float | None  # None before it started or when nothing is done yet
    eta_seconds: int | None  # None unless it is sending at a known rate
    final: bool

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.final else 0)


def progress_of(broadcast: Broadcast, *, now: datetime) -> Progress:
    status = BroadcastStatus(broadcast.status)
    done = broadcast.sent_count + broadcast.failed_count
    total = max(broadcast.recipients_count, done)
    per_minute = None
    if broadcast.started_at is not None and done:
        end = broadcast.completed_at or now
        minutes = max((end - broadcast.started_at).total_seconds(), 1.0) / 60
        per_minute = done / minutes
    eta = None
    if status is BroadcastStatus.SENDING and per_minute:
        eta = round((total - done) / per_minute * 60)
    return Progress(done, total, per_minute, eta, status in FINAL)
