from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from stellarstack.api.retention import BackupRecord, RetentionPolicy, select_for_deletion

START = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)  # a Monday


def daily(count: int, *, per_day: int = 1) -> list[BackupRecord]:
    return [
        BackupRecord(f"b{day:03d}-{n}", START + timedelta(days=day, hours=n))
        for day in range(count)
        for n in range(per_day)
    ]


def test_keep_last() -> None:
    backups = daily(5)
    assert select_for_deletion(backups, RetentionPolicy(keep_last=2)) == [
        "b000-0",
        "b001-0",
        "b002-0",
    ]


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    backups = daily(3, per_day=3)
    deleted = select_for_deletion(backups, RetentionPolicy(keep_daily=2))
    kept = {b.name for b in backups} - set(deleted)
    assert kept == {"b002-2", "b001-2"}


def test_keep_weekly_uses_iso_weeks() -> None:
    backups = daily(21)  # three full ISO weeks, Monday to Sunday
    deleted = select_for_deletion(backups, RetentionPolicy(keep_weekly=2))
    kept = {b.name for b in backups} - set(deleted)
    assert kept == {"b020-0", "b013-0"}


def test_rules_combine_as_a_union() -> None:
    backups = daily(21)
    deleted = select_for_deletion(backups, RetentionPolicy(keep_last=1, keep_weekly=3))
    kept = {b.name for b in backups} - set(deleted)
    assert kept == {"b020-0", "b013-0", "b006-0"}


def test_locked_backups_are_never_selected_and_do_not_count() -> None:
    backups = daily(4)
    backups.append(BackupRecord("locked-old", START - timedelta(days=30), locked=True))
    backups.append(BackupRecord("locked-new", START + timedelta(days=30), locked=True))
    deleted = select_for_deletion(backups, RetentionPolicy(keep_last=2))
    assert deleted == ["b000-0", "b001-0"]


def test_incomplete_backups_are_left_alone() -> None:
    backups = [*daily(2), BackupRecord("running", None)]
    assert select_for_deletion(backups, RetentionPolicy(keep_last=1)) == ["b000-0"]


def test_days_follow_the_time_zone() -> None:
    # 23:30 UTC on Jan 1 is already Jan 2 in Berlin, so both backups fall on one Berlin day.
    backups = [
        BackupRecord("a", datetime(2024, 1, 1, 23, 30, tzinfo=UTC)),
        BackupRecord("b", datetime(2024, 1, 2, 8, 0, tzinfo=UTC)),
    ]
    assert select_for_deletion(backups, RetentionPolicy(keep_daily=5), zone="UTC") == []
    assert select_for_deletion(backups, RetentionPolicy(keep_daily=5), zone="Europe/Berlin") == [
        "a"
    ]


def test_a_policy_must_keep_something() -> None:
    with pytest.raises(ValidationError, match="at least one of keepLast"):
        RetentionPolicy()
    with pytest.raises(ValidationError, match="keep_last"):
        RetentionPolicy(keep_last=0)
