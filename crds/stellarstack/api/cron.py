"""Cron evaluation for Schedules, with daylight-saving changes handled on purpose.

Cron expressions are read in wall-clock time of the schedule's IANA time zone. Two rules decide
what happens around daylight-saving changes (both are tested):

* a wall-clock time that does not exist (the hour skipped in spring) runs once, shifted forward
  by the length of the gap (02:30 becomes 03:30 when 02:00-03:00 is skipped);
* a wall-clock time that happens twice (the hour repeated in autumn) runs once, at its first
  occurrence.

Runs are never more frequent than `MIN_INTERVAL`: expressions with a seconds field are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

MIN_INTERVAL = timedelta(minutes=1)
# Enough to cross any year boundary, leap day and DST change for sparse expressions.
_MAX_CANDIDATES = 10_000
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
# A fixed point to test expressions from, so validation does not depend on today's date.
_REFERENCE = datetime(2024, 1, 1)


class CronError(ValueError):
    """An expression or time zone that a Schedule cannot use."""


def check_time_zone(zone: str) -> str:
    """Return the zone name if it is an IANA time zone known here."""
    if zone in {"UTC", "Etc/UTC"}:
        return zone
    if zone not in available_timezones():
        raise CronError(f"{zone!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Berlin')")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but broken
        raise CronError(f"{zone!r} cannot be loaded: {exc}") from exc
    return zone


def check_cron(expression: str) -> str:
    """Return the normalised expression if it is a valid five-field cron expression or macro."""
    normalised = " ".join(expression.split())
    if normalised.lower() in _MACROS:
        return normalised.lower()
    fields = normalised.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"{expression!r} has {len(fields)} fields; use five (minute hour day-of-month month "
            "day-of-week). Seconds are not supported: schedules run at most once a minute"
        )
    try:
        runs = croniter(normalised, _REFERENCE)
        first = runs.get_next(datetime)
        # Sparse expressions such as Feb 29 still fire within eight years; Feb 30 never does.
        if first - _REFERENCE > timedelta(days=366 * 8):
            raise CronError(f"{expression!r} never fires")
    except CronError:
        raise
    except CroniterBadDateError as exc:
        raise CronError(f"{expression!r} never fires (no matching date)") from exc
    except (CroniterBadCronError, CroniterError, ValueError) as exc:
        raise CronError(f"{expression!r} is not a valid cron expression: {exc}") from exc
    return normalised


def next_run(expression: str, zone: str, after: datetime) -> datetime:
    """The first run strictly after `after` (an aware datetime), as an aware UTC datetime."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    tz = ZoneInfo(zone)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    # Start one hour early so that a wall-clock time in a repeated hour is still seen; the
    # `> after` test below discards everything that is not strictly later.
    candidates = croniter(check_cron(expression), local_after - timedelta(hours=1))
    for _ in range(_MAX_CANDIDATES):
        wall: datetime = candidates.get_next(datetime)
        instant = wall_clock_to_utc(wall, tz)
        if instant > after:
            return instant
    raise CronError(f"{expression!r} has no run after {after.isoformat()}")  # pragma: no cover


def wall_clock_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """Map a naive wall-clock time to a UTC instant per the module's DST rules.

    `fold=0` picks the first occurrence of a repeated time; for a time inside a gap it applies
    the offset from before the gap, which shifts the run forward by the gap's length.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def upcoming_runs(expression: str, zone: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` runs after `after` (for previews in the panel and `kubectl`)."""
    runs: list[datetime] = []
    cursor = after
    for _ in range(count):
        cursor = next_run(expression, zone, cursor)
        runs.append(cursor)
    return runs
