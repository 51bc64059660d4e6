"""Leases: a named job that one process at a time may run, decided in the database so that it
holds across the workers of one panel and across replicas. A holder renews its lease well
before it expires; when it dies, the lease runs out and another process takes it.

Expiry is judged by the database's clock on PostgreSQL (replicas on several hosts need not
agree on the time); an SQLite file is shared only by processes of one host, whose clock is
the same for all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stellarstack.panel.db.models import Lease


def database_now(db: Session) -> datetime:
    if db.get_bind().dialect.name == "postgresql":
        now: datetime = db.execute(select(func.now())).scalar_one()
        return now.astimezone(UTC)
    return datetime.now(UTC)


def take(db: Session, *, name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease `name` for `seconds`; False while another holder's has not
    run out. Conditional writes decide races: of two processes taking an expired lease at
    once, one updates the row and the other finds the condition false."""
    now = database_now(db)
    expires_at = now + timedelta(seconds=seconds)
    renewed = db.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
        .values(holder=holder, expires_at=expires_at)
    )
    if renewed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if db.scalar(select(Lease.name).where(Lease.name == name)) is not None:
        return False
    try:
        with db.begin_nested():
            db.add(Lease(name=name, holder=holder, expires_at=expires_at))
    except IntegrityError:  # another process created it first
        return False
    return True


def give_up(db: Session, *, name: str, holder: str) -> None:
    """End `holder`'s lease now (a clean shutdown), so that another process need not wait
    for it to run out."""
    db.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=database_now(db))
    )


def holder_of(db: Session, name: str) -> str | None:
    """Who holds the lease now (None when nobody's is current)."""
    lease = db.get(Lease, name)
    if lease is None or lease.expires_at <= database_now(db):
        return None
    return lease.holder
