"""Which backups a retention policy deletes. Pure: backups in, names out.

A backup is kept when any rule keeps it. Locked backups are never selected and do not count
toward the rules (a locked backup is an extra, not one of the "last N"). Only completed backups
are considered; pending, running and failed ones are not retention's business.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from stellarstack.api.common import ApiModel


class RetentionPolicy(ApiModel):
    """How many backups to keep; at least one rule must keep something."""

    keep_last: int | None = Field(default=None, ge=1, le=1000)
    """Keep the newest N backups."""
    keep_daily: int | None = Field(default=None, ge=1, le=1000)
    """Keep the newest backup of each of the last N days that have one."""
    keep_weekly: int | None = Field(default=None, ge=1, le=520)
    """Keep the newest backup of each of the last N ISO weeks that have one."""

    @model_validator(mode="after")
    def _keeps_something(self) -> RetentionPolicy:
        if self.keep_last is None and self.keep_daily is None and self.keep_weekly is None:
            raise ValueError("set at least one of keepLast, keepDaily, keepWeekly")
        return self


@dataclass(frozen=True)
class BackupRecord:
    """What retention needs to know about one backup."""

    name: str
    completed_at: datetime | None
    """None while the backup is not complete."""
    locked: bool = False


def select_for_deletion(
    backups: Iterable[BackupRecord], policy: RetentionPolicy, *, zone: str = "UTC"
) -> list[str]:
    """Names of the backups the policy does not keep, oldest first.

    Days and weeks are calendar days and ISO weeks in `zone` (the schedule's time zone).
    """
    tz = ZoneInfo(zone)
    candidates = sorted(
        (b for b in backups if b.completed_at is not None and not b.locked),
        key=lambda b: (b.completed_at, b.name),
        reverse=True,
    )
    keep: set[str] = set()
    if policy.keep_last is not None:
        keep.update(b.name for b in candidates[: policy.keep_last])
    if policy.keep_daily is not None:
        keep.update(_newest_per_period(candidates, policy.keep_daily, lambda d: d.date(), tz))
    if policy.keep_weekly is not None:
        keep.update(
            _newest_per_period(candidates, policy.keep_weekly, lambda d: d.isocalendar()[:2], tz)
        )
    return [b.name for b in reversed(candidates) if b.name not in keep]


def _newest_per_period(
    newest_first: list[BackupRecord],
    periods: int,
    period_of: Callable[[datetime], Hashable],
    tz: ZoneInfo,
) -> list[str]:
    kept: list[str] = []
    seen: set[Hashable] = set()
    for backup in newest_first:
        assert backup.completed_at is not None
        period = period_of(backup.completed_at.astimezone(tz))
        if period in seen:
            continue
        if len(seen) == periods:
            break
        seen.add(period)
        kept.append(backup.name)
    return kept
