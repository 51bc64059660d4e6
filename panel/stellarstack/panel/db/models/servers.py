"""Servers as the panel knows them (the GameServer resource is the truth for what runs),
their subusers and invitations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base, IdMixin, TimestampMixin, utcnow


class TargetKind(StrEnum):
    """Which backend runs a server."""

    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class Server(IdMixin, TimestampMixin, Base):
    __tablename__ = "servers"
    __table_args__ = (
        UniqueConstraint("node_id", "namespace", "resource_name"),
        UniqueConstraint("kubernetes_target_id", "namespace", "resource_name"),
    )

    name: Mapped[str] = mapped_column(String(191))
    """Display name."""
    description: Mapped[str] = mapped_column(String(1000), default="")
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), default=None, index=True
    )
    """Unset for resources found in a cluster that no one was assigned yet."""
    target_kind: Mapped[TargetKind] = mapped_column(SqlEnum(TargetKind, native_enum=False))
    node_id: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="RESTRICT"), default=None, index=True
    )
    kubernetes_target_id: Mapped[str | None] = mapped_column(
        ForeignKey("kubernetes_targets.id", ondelete="RESTRICT"), default=None, index=True
    )
    namespace: Mapped[str] = mapped_column(String(63))
    resource_name: Mapped[str] = mapped_column(String(63))
    """The GameServer's metadata.name."""
    blueprint: Mapped[str] = mapped_column(String(253))
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    """Created outside the panel (kubectl, GitOps) and adopted."""
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_limit: Mapped[int] = mapped_column(Integer, default=3)
    allocation_limit: Mapped[int] = mapped_column(Integer, default=1)
    schedule_limit: Mapped[int] = mapped_column(Integer, default=10)
    state: Mapped[str] = mapped_column(String(32), default="Pending")
    """The GameServer's status.state as last read."""
    status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The GameServer's status as last read."""
    status_read_at: Mapped[datetime | None] = mapped_column(default=None)


class Subuser(IdMixin, Base):
    """Another user's access to a server, with a subset of permission nodes."""

    __tablename__ = "subusers"
    __table_args__ = (UniqueConstraint("server_id", "user_id"),)

    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invitation(IdMixin, Base):
    """An invitation by email to become a subuser; accepted once, before it expires."""

    __tablename__ = "invitations"

    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    invited_by_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
