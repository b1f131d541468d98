from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow
from tidings.outbox.status import MessageStatus


class Message(Base):
    """One recipient of one broadcast (or a single send): the outbox row.

    Workers claim `queued` rows whose `due_at` has come (the partial index below holds
    exactly those), lease them until `lease_until`, send, and record the outcome. Every
    row ends in one final status: sent (later delivered), failed, skipped or cancelled,
    with `reason` saying why for the last three.

    `recipient` and `variables` are personal data: erasing the contact empties them.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id"),
        Index(
            "ix_messages_due",
            "due_at",
            postgresql_where=text(f"status = '{MessageStatus.QUEUED}'"),
            sqlite_where=text(f"status = '{MessageStatus.QUEUED}'"),
        ),
        Index(
            "ix_messages_leased",
            "lease_until",
            postgresql_where=text(f"status = '{MessageStatus.SENDING}'"),
            sqlite_where=text(f"status = '{MessageStatus.SENDING}'"),
        ),
        Index("ix_messages_broadcast_id_status", "broadcast_id", "status"),
        Index("ix_messages_org_id_id", "org_id", "id"),
        Index("ix_messages_org_id_created_at", "org_id", "created_at"),  # by date (0021)
        Index("ix_messages_contact_id", "contact_id"),
        Index(  # a broadcast's fallbacks: its few rows that fell back (0027)
            "ix_messages_broadcast_id_fell_back_to",
            "broadcast_id",
            "fell_back_to",
            postgresql_where=text("fell_back_to IS NOT NULL"),
            sqlite_where=text("fell_back_to IS NOT NULL"),
        ),
        Index(  # reports look messages up by provider id; one is set when sent
            "ix_messages_org_id_provider_id",
            "org_id",
            "provider_id",
            postgresql_where=text("provider_id IS NOT NULL"),
            sqlite_where=text("provider_id IS NOT NULL"),
        ),
        Index(  # bounces find the message by the Message-ID it went with
            "ix_messages_org_id_email_message_id",
            "org_id",
            "email_message_id",
            postgresql_where=text("email_message_id IS NOT NULL"),
            sqlite_where=text("email_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign keys on these (migration 0010): PostgreSQL checks each with a trigger
    # per inserted row, which made up most of a million-row broadcast expansion. Messages
    # are written from rows read in the same transaction, contacts are never deleted (an
    # erased one keeps its row), and nothing deletes orgs, broadcasts or campaigns that
    # have messages.
    org_id: Mapped[int] = mapped_column(BigIntPK)
    broadcast_id: Mapped[int | None] = mapped_column(BigIntPK)
    campaign_id: Mapped[int | None] = mapped_column(BigIntPK)
    # What is sent: the campaign and template as they were when the send was accepted
    # (`campaigns.models.CampaignVersion`). No foreign key, like the four above.
    campaign_version_id: Mapped[int | None] = mapped_column(BigIntPK)
    contact_id: Mapped[int | None] = mapped_column(BigIntPK)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str | None] = mapped_column(String(320))
    variables: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    is_test: Mapped[bool] = mapped_column(
        default=False
    )  # goes to the sink, whatever the connection
    reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    # The worker that claimed it last (`workers.id`, no foreign key: the hot path); while
    # SENDING, the claim is freed as soon as that worker is found dead.
    worker_id: Mapped[int | None] = mapped_column(BigIntPK)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    # The connection its last attempt went through (failover moves a message along its
    # campaign's connections); null until handed to one, and for the built-in sink.
    connection_id: Mapped[int | None] = mapped_column(BigIntPK)
    # Cross-channel fallback: the message of the other channel this one was sent instead
    # of (`fallback_of`), or that was sent instead of this one (`fell_back_to`). Once.
    fallback_of: Mapped[int | None] = mapped_column(BigIntPK)
    fell_back_to: Mapped[int | None] = mapped_column(BigIntPK)
    # An email's Message-ID, without angle brackets: random (`content.mime.message_id`),
    # so a bounce or complaint is matched to its message by this column alone.
    email_message_id: Mapped[str | None] = mapped_column(String(255))
    segments: Mapped[int | None] = mapped_column(SmallInteger)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)  # micro-credits reserved
    # What happened after sending, each set once by the first (human) event of its kind:
    # events arrive in any order, and a later one never moves a message back.
    delivered_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    played_at: Mapped[datetime | None]
    complained_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


ATTEMPT_REASON_LENGTH = 500
"""The longest reason an attempt keeps (a message's own `reason` is as long)."""


class MessageAttempt(Base):
    """An attempt that did not end its message (0027): a transient failure tried again
    after the retry backoff (`retried`), or at once through a connection of its
    campaign's list it has not tried yet (`failed over`). Written by the dispatcher's
    record step, one executemany per batch; the attempt that ended the message is the
    message row itself (its `attempts`, `connection_id`, `status`, `reason`), so a
    message sent at its first attempt has no row here. Deleted with its message
    (retention), and when its recipient is erased (a provider's reason may quote the
    address).
    """

    __tablename__ = "message_attempts"
    __table_args__ = (Index("ix_message_attempts_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign keys, as on `messages` (the hot path): written from rows just read.
    org_id: Mapped[int] = mapped_column(BigIntPK)
    message_id: Mapped[int] = mapped_column(BigIntPK)
    attempt: Mapped[int] = mapped_column(SmallInteger)  # 1-based, as `messages.attempts`
    connection_id: Mapped[int | None] = mapped_column(BigIntPK)  # null: the sink
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(ATTEMPT_REASON_LENGTH))
    at: Mapped[datetime]
