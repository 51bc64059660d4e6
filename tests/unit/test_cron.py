import itertools
from datetime import UTC, datetime, timedelta

import pytest

from stellarstack.api.cron import CronError, check_cron, check_time_zone, next_run, upcoming_runs


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "normalised"),
    [
        ("0 4 * * *", "0 4 * * *"),
        ("  */5   * * * 1-5 ", "*/5 * * * 1-5"),
        ("@Daily", "@daily"),
        ("0 0 29 2 *", "0 0 29 2 *"),
    ],
)
def test_valid_expressions(expression: str, normalised: str) -> None:
    assert check_cron(expression) == normalised


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * * * * *", "Seconds are not supported"),
        ("*/10 * * * * *", "6 fields"),
        ("0 4 * *", "4 fields"),
        ("61 * * * *", "not a valid cron"),
        ("0 25 * * *", "not a valid cron"),
        ("0 0 30 2 *", "never fires"),
        ("@every_second", "1 fields"),
        ("banana", "1 fields"),
    ],
)
def test_invalid_expressions_name_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(CronError, match=reason):
        check_cron(expression)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_time_zones(zone: str) -> None:
    assert check_time_zone(zone) == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CEST+2", "../etc/passwd", ""])
def test_bad_time_zones(zone: str) -> None:
    with pytest.raises(CronError, match="IANA"):
        check_time_zone(zone)


def test_next_run_is_strictly_after() -> None:
    assert next_run("0 4 * * *", "UTC", utc(2024, 5, 1, 4, 0)) == utc(2024, 5, 2, 4, 0)
    assert next_run("0 4 * * *", "UTC", utc(2024, 5, 1, 3, 59)) == utc(2024, 5, 1, 4, 0)


def test_next_run_reads_the_expression_in_the_time_zone() -> None:
    # 04:00 in New York in summer (EDT, UTC-4) is 08:00 UTC.
    assert next_run("0 4 * * *", "America/New_York", utc(2024, 7, 1)) == utc(2024, 7, 1, 8)


def test_a_time_in_the_spring_gap_runs_once_shifted_by_the_gap() -> None:
    # Europe/Berlin skips 02:00-03:00 on 2024-03-31; 02:30 runs at 03:30 CEST = 01:30 UTC.
    runs = upcoming_runs("30 2 * * *", "Europe/Berlin", utc(2024, 3, 29, 12), 4)
    assert runs == [
        utc(2024, 3, 30, 1, 30),
        utc(2024, 3, 31, 1, 30),
        utc(2024, 4, 1, 0, 30),
        utc(2024, 4, 2, 0, 30),
    ]


def test_a_time_in_the_repeated_hour_runs_once_at_its_first_occurrence() -> None:
    # Europe/Berlin repeats 02:00-03:00 on 2024-10-27 (CEST then CET).
    runs = upcoming_runs("30 2 * * *", "Europe/Berlin", utc(2024, 10, 26, 12), 3)
    assert runs == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30), utc(2024, 10, 29, 1, 30)]


def test_frequent_schedule_across_the_repeated_hour_never_runs_twice_for_one_wall_time() -> None:
    runs = upcoming_runs("*/30 * * * *", "Europe/Berlin", utc(2024, 10, 26, 23, 0), 8)
    locals_ = [r.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")) for r in runs]
    walls = [r.replace(tzinfo=None) for r in locals_]
    assert len(set(walls)) == len(walls)
    assert all(b > a for a, b in itertools.pairwise(runs))


def test_runs_are_never_closer_than_a_minute() -> None:
    runs = upcoming_runs("* * * * *", "UTC", utc(2024, 1, 1), 50)
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {timedelta(minutes=1)}


def test_leap_day() -> None:
    assert next_run("0 0 29 2 *", "UTC", utc(2025, 1, 1)) == utc(2028, 2, 29)


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run("0 4 * * *", "UTC", datetime(2024, 1, 1))
