from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, JSONDoc, unique_among_live, utcnow


class Campaign(Base):
    """What is sent and how: channel, template, sender, purpose, connection, tracking.
    `connection_id` null means the org's default connection for the channel (the
    built-in sink unless another is marked default).

    A send never reads this row while it runs: it is frozen into a `CampaignVersion` when
    the send is accepted. Deleting it sets `deleted_at` (hidden, kept as history)."""

    __tablename__ = "campaigns"
    __table_args__ = (
        unique_among_live("campaigns", "org_id", "name"),
        unique_among_live("campaigns", "org_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(8))
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    sms_sender: Mapped[str | None] = mapped_column(String(16))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    # The connections to send through, in order, when more than one (failover): the first
    # is `connection_id`; null when there is only that one.
    connection_ids: Mapped[list[int] | None] = mapped_column(JSONDoc)
    # Cross-channel fallback: a campaign of the other channel whose message a recipient
    # gets instead when this one's fails permanently or hard-bounces (docs/sending.md).
    fallback_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    track_opens: Mapped[bool] = mapped_column(default=False)
    track_clicks: Mapped[bool] = mapped_column(default=False)
    # Made by a single send that gave a template or inline content instead of a campaign:
    # one per distinct template, sender, purpose and connection; never listed.
    is_single_send: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How other systems name this campaign (seed 000: its campaignId, project and survey).
    external_id: Mapped[str | None] = mapped_column(String(128))
    project_ref: Mapped[str | None] = mapped_column(String(128))
    survey_ref: Mapped[str | None] = mapped_column(String(128))
    # Where each recipient's invite link leads; may hold template variables.
    invite_url: Mapped[str | None] = mapped_column(Text)
    # The language of the unsubscribe line on marketing mail (None: English).
    language: Mapped[str | None] = mapped_column(String(8))
    # Its own quiet hours {"start", "end"} instead of the org's for its channel (null).
    quiet_hours: Mapped[dict[str, str] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]


class CampaignVersion(Base):
    """A campaign as a send froze it when it was accepted: its template's version, and
    everything the outbox and the dispatcher read of the campaign, the connection resolved
    (null: the built-in sink). Immutable; one row per distinct content of a campaign
    (`digest`), shared by every send that froze the same. Broadcasts and messages point at
    one (`campaign_version_id`), so editing the campaign or its template never changes a
    send already accepted."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "digest"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    template_version_id: Mapped[int] = mapped_column(
        ForeignKey("template_versions.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(16))
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    sms_sender: Mapped[str | None] = mapped_column(String(16))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"), index=True)
    # Failover: every connection in order, the first `connection_id` (null: that one only).
    connection_ids: Mapped[list[int] | None] = mapped_column(JSONDoc)
    # The fallback campaign, frozen with this one (null: no fallback).
    fallback_version_id: Mapped[int | None] = mapped_column(BigIntPK)
    track_opens: Mapped[bool]
    track_clicks: Mapped[bool]
    invite_url: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    quiet_hours: Mapped[dict[str, str] | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
