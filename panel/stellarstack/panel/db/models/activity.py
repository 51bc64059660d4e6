"""The activity log (every mutating action, login and denial) and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base, IdMixin, utcnow


class ActivityLog(IdMixin, Base):
    __tablename__ = "activity_log"
    __table_args__ = (
        Index("ix_activity_log_at", "at"),
        Index("ix_activity_log_server_at", "server_id", "at"),
    )

    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(100))
    """Dotted name, e.g. `server.power.start`, `auth.login.failed`."""
    actor_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    api_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    session_id: Mapped[str | None] = mapped_column(String(32), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    target_type: Mapped[str | None] = mapped_column(String(50), default=None)
    target_id: Mapped[str | None] = mapped_column(String(100), default=None)
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="SET NULL"), default=None
    )
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Details; `before`/`after` for updates."""


class IdempotencyRecord(IdMixin, Base):
    """The response to a create request sent with an `Idempotency-Key`, replayed on repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    principal: Mapped[str] = mapped_column(String(100))
    """User (and API key) the key belongs to: keys of different callers never collide."""
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(128))
    """Hash of method, path and body: a key reused for another request is refused."""
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
