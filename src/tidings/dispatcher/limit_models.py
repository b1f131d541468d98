"""The tables behind the cluster-wide limits of a connection (see `dispatcher/limits.py`).

Times here are epoch seconds as floats (`…_epoch`), not `_at` timestamps: the limiter does
arithmetic on them inside UPDATE statements, and float arithmetic is the same SQL on
SQLite and PostgreSQL where date arithmetic is not.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK


class ConnectionBucket(Base):
    """A connection's token bucket: one row per connection, created on first use.

    `tokens` as of `refilled_epoch` (a penalty moves it into the future: no refill until
    then); nobody sends before `blocked_until_epoch`. `last_granted` is the count the last
    acquire took, so one UPDATE … RETURNING can both take tokens and report how many.
    """

    __tablename__ = "connection_buckets"

    connection_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    tokens: Mapped[float] = mapped_column(Float)
    refilled_epoch: Mapped[float] = mapped_column(Float)
    blocked_until_epoch: Mapped[float] = mapped_column(Float)
    last_granted: Mapped[int] = mapped_column(Integer)


class ConnectionSlot(Base):
    """Sends in flight under one grant: `sends` slots of a connection's concurrency, held
    by `holder` (a worker) until released or until `expires_epoch`, so a dead worker's
    slots free themselves.

    A grant is released by its id, so ids are never reused: on SQLite AUTOINCREMENT
    (a plain rowid reuses a deleted one, and a late release — of a grant that expired,
    or released twice — would free another grant's slots); on PostgreSQL an identity.
    """

    __tablename__ = "connection_slots"
    __table_args__ = (
        Index("ix_connection_slots_connection_id_expires_epoch", "connection_id", "expires_epoch"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    holder: Mapped[str] = mapped_column(String(200))
    sends: Mapped[int] = mapped_column(Integer)
    expires_epoch: Mapped[float] = mapped_column(Float)
