"""What the panel's processes agree on through the database, so that it holds across the
workers of one panel and across panel replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from stellarstack.panel.db.base import Base


class Lease(Base):
    """A job only one process may run at a time (the background tasks): held by `holder`
    until `expires_at` (the database's clock), renewed by the holder while it runs."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    """`host:pid:random` of the process holding it."""
    expires_at: Mapped[datetime]
