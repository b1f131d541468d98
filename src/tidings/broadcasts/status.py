"""Broadcast statuses and the one table of moves between them.

    DRAFT ──schedule──▶ SCHEDULED ──due──▶ SENDING ──all final──▶ SENT
      │                   │   ▲               │  ▲
      │                   ▼   │ resume        ▼  │ resume
      │                  PAUSED (before start) PAUSED (after start)
      └──────────── any non-final ──cancel──▶ CANCELLED;  SENDING ──fatal──▶ FAILED
                                  SCHEDULED ──no credit at start──▶ FAILED

PAUSED remembers nothing itself: a paused broadcast resumes to SENDING if it had
started (`started_at` set), else to SCHEDULED. SENT, CANCELLED and FAILED are final.
"""

from __future__ import annotations

from enum import StrEnum

from tidings.errors import Conflict


class BroadcastStatus(StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


S = BroadcastStatus
TRANSITIONS: dict[BroadcastStatus, frozenset[BroadcastStatus]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.SENDING, S.PAUSED, S.CANCELLED, S.DRAFT, S.FAILED}),
    S.SENDING: frozenset({S.SENT, S.PAUSED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SENT: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
FINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def can_move(current: BroadcastStatus, target: BroadcastStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: BroadcastStatus, target: BroadcastStatus) -> BroadcastStatus:
    """`target` if the table allows the move, else Conflict (409) naming both."""
    if not can_move(current, target):
        raise Conflict(f"a {current} broadcast cannot become {target}")
    return target
