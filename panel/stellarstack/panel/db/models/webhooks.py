"""Webhooks and their durable outbox: every delivery is a row before anything is sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base, IdMixin, TimestampMixin, utcnow


class WebhookFormat(StrEnum):
    JSON = "json"
    DISCORD = "discord"
    SLACK = "slack"


class Webhook(IdMixin, TimestampMixin, Base):
    """Global (admin-owned, no server) or per server."""

    __tablename__ = "webhooks"

    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), default=None, index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    """HMAC-SHA256 key for the signature header (shown once on creation)."""
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Event names or patterns (`server.power.*`, `*`)."""
    format: Mapped[WebhookFormat] = mapped_column(
        SqlEnum(WebhookFormat, native_enum=False), default=WebhookFormat.JSON
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class WebhookDelivery(IdMixin, Base):
    """One event for one webhook: pending until delivered or out of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    """The exact bytes sent (and signed), fixed when the event happens."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, delivered or failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    history: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
