"""Where servers run: locations, Docker nodes with their allocations, Kubernetes targets, and
the blueprints servers are made from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base, IdMixin, TimestampMixin


class Location(IdMixin, TimestampMixin, Base):
    __tablename__ = "locations"

    short: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class Node(IdMixin, TimestampMixin, Base):
    """A Docker host running nodeproxy."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    location_id: Mapped[str | None] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT"), default=None, index=True
    )
    url: Mapped[str] = mapped_column(String(500))
    """Base URL of the node API (https://host:8443)."""
    token: Mapped[str] = mapped_column(Text)
    """The node token the panel authenticates with (the node keeps its own copy)."""
    agent_id: Mapped[str] = mapped_column(String(63))
    """The node's agent id: the audience of server tokens the panel signs for it."""
    public_address: Mapped[str] = mapped_column(String(255), default="")
    """Address players connect to for ports on this node."""
    memory_mib: Mapped[int] = mapped_column(Integer, default=0)
    """Admin-set memory capacity; 0 means "what the node reports"."""
    disk_mib: Mapped[int] = mapped_column(Integer, default=0)
    """Admin-set disk capacity; 0 means "what the node reports"."""
    cpu_millicores: Mapped[int] = mapped_column(Integer, default=0)
    """Admin-set CPU capacity; 0 means "what the node reports"."""
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    capacity_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """What the node last reported of its capacity and its servers' allocations (as of
    `last_heartbeat_at`; see `stellarstack.panel.nodecapacity`)."""


class Allocation(IdMixin, Base):
    """One IP:port on a node that a server may use."""

    __tablename__ = "allocations"
    __table_args__ = (UniqueConstraint("node_id", "ip", "port"),)

    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str] = mapped_column(String(45))
    port: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(255), default=None)
    server_id: Mapped[str | None] = mapped_column(
        ForeignKey("servers.id", ondelete="SET NULL"), default=None, index=True
    )
    notes: Mapped[str] = mapped_column(String(255), default="")


class KubernetesTarget(IdMixin, TimestampMixin, Base):
    """A namespace of a Kubernetes cluster the panel writes GameServers into."""

    __tablename__ = "kubernetes_targets"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    location_id: Mapped[str | None] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT"), default=None, index=True
    )
    namespace: Mapped[str] = mapped_column(String(63))
    context: Mapped[str | None] = mapped_column(String(253), default=None)
    """Kubeconfig context; the current one (or in-cluster credentials) when unset."""
    public_address: Mapped[str] = mapped_column(String(255), default="")
    """Address players use when a GameServer's status reports none."""


class BlueprintRecord(IdMixin, TimestampMixin, Base):
    """A Blueprint the panel offers (the API model's wire form, validated on every write)."""

    __tablename__ = "blueprints"

    name: Mapped[str] = mapped_column(String(253), unique=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
