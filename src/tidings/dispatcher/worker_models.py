"""The workers table: who is sending, and whether it is still alive (`dispatcher/heartbeat.py`).

Like the limiter's tables, times here are epoch seconds as floats (`…_epoch`): the
heartbeat's arithmetic (a cutoff, a renewal) is the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class Worker(Base):
    """A running dispatcher: one row per `tidings worker` (or `tidings serve` with its
    dispatcher), inserted when it starts, its `heartbeat_epoch` moved every
    `TIDINGS_WORKER_HEARTBEAT_SECONDS`, deleted when it stops cleanly — or, once it has
    been silent for `TIDINGS_WORKER_DEAD_AFTER_SECONDS`, by any live worker, which frees
    the messages it claimed (`messages.worker_id`) and its connection slots
    (`connection_slots.holder` = `name`) in the same transaction.

    Ids are never reused (SQLite AUTOINCREMENT, a PostgreSQL sequence): a message's
    `worker_id` names one worker's claim, never a later one's.
    """

    __tablename__ = "workers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_epoch: Mapped[float] = mapped_column(Float)
