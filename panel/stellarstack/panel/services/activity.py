"""The activity log: one row per mutating action, login and denial, written in the same
transaction as the change it describes (so a rolled-back change leaves no log line, and a
logged change always happened)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from stellarstack.panel.db.base import utcnow
from stellarstack.panel.db.models import ActivityLog

# Called for every recorded event, inside the same transaction (webhooks queue deliveries here).
ActivityListener = Callable[[Session, ActivityLog], None]


@dataclass(frozen=True)
class Actor:
    """Who did it; every field optional (failed logins have no user)."""

    user_id: str | None = None
    api_key_id: str | None = None
    session_id: str | None = None
    ip: str | None = None


class ActivityRecorder:
    """Writes activity rows and tells its listeners (one recorder per running panel)."""

    def __init__(self) -> None:
        self._listeners: list[ActivityListener] = []
        self.clock: Callable[[], datetime] = utcnow
        """Times the entries; the app sets it to the panel's clock (which tests move)."""

    def add_listener(self, listener: ActivityListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def record(
        self,
        db: Session,
        *,
        event: str,
        actor: Actor,
        target_type: str | None = None,
        target_id: str | None = None,
        server_id: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> ActivityLog:
        entry = ActivityLog(
            at=self.clock(),
            event=event,
            actor_id=actor.user_id,
            api_key_id=actor.api_key_id,
            session_id=actor.session_id,
            ip=actor.ip,
            target_type=target_type,
            target_id=target_id,
            server_id=server_id,
            properties=properties or {},
        )
        db.add(entry)
        db.flush()
        for listener in self._listeners:
            listener(db, entry)
        return entry
