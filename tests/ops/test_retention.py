"""Retention (grandfather-father-son): the pure rule, then over 400 synthetic days of backup
files and records. The expected survivors are worked out from the calendar, not by bucketing."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from audit.backups.paths import companions, new_dump_path
from audit.backups.retention import BackupPoint, RetentionPolicy, retention_keep
from audit.models import Backup, SystemEvent

DEFAULT = RetentionPolicy(hourly=24, daily=7, weekly=4, monthly=12)
START = datetime(2025, 1, 1, 0, 30, tzinfo=UTC)
HOURS = 400 * 24
LAST = START + timedelta(hours=HOURS - 1)  # 2026-02-04 23:30, a Wednesday


def hourly_points(verified: bool = True) -> list[BackupPoint[datetime]]:
    return [
        BackupPoint(at, at, verified) for at in (START + timedelta(hours=h) for h in range(HOURS))
    ]


def at_2330(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)


def expected_survivors() -> set[datetime]:
    """From the calendar: the last 24 hours; the last backup (23:30) of the 7 last days; of the
    4 last ISO weeks (their Sunday), and of the 12 last months (their last day); the current
    period's newest is LAST itself."""
    hourly = {LAST - timedelta(hours=h) for h in range(24)}
    daily = {at_2330(LAST.date() - timedelta(days=d)) for d in range(7)}
    sunday = LAST.date() + timedelta(days=6 - LAST.weekday())
    weekly = {LAST} | {at_2330(sunday - timedelta(weeks=w)) for w in range(1, 4)}
    monthly = {LAST}
    first_of_month = LAST.date().replace(day=1)
    for _ in range(11):
        monthly.add(at_2330(first_of_month - timedelta(days=1)))  # the previous month's last day
        first_of_month = (first_of_month - timedelta(days=1)).replace(day=1)
    return hourly | daily | weekly | monthly


def test_the_expected_set_is_what_the_calendar_says() -> None:
    expected = expected_survivors()
    assert LAST.isoformat() == "2026-02-04T23:30:00+00:00"
    assert len(expected) == 42  # 24 hourly + 6 days + 2 Sundays + 10 month ends
    assert min(expected) == datetime(2025, 3, 31, 23, 30, tzinfo=UTC)
    month_ends = [(3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30), (10, 31)]
    month_ends += [(11, 30), (12, 31)]
    older = [datetime(2025, m, d, 23, 30, tzinfo=UTC) for m, d in month_ends]
    sundays = [datetime(2026, 1, d, 23, 30, tzinfo=UTC) for d in (18, 25)]
    assert sorted(t for t in expected if t.date() < date(2026, 1, 29)) == older + sundays


def test_400_days_of_hourly_backups_keep_exactly_the_grandfather_father_son_set() -> None:
    assert retention_keep(hourly_points(), DEFAULT) == expected_survivors()


def test_the_newest_verified_backup_is_kept_even_when_the_settings_keep_nothing() -> None:
    points = hourly_points()
    assert retention_keep(points, RetentionPolicy(0, 0, 0, 0)) == {LAST}
    assert retention_keep([], DEFAULT) == set()


def test_failed_attempts_fill_no_period_and_go_once_older_than_the_newest_good_one() -> None:
    t = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    points = [
        BackupPoint("mar10-23 failed", t, False),
        BackupPoint("mar10-22", t - timedelta(hours=1), True),
        BackupPoint("mar10-21", t - timedelta(hours=2), True),
        BackupPoint("mar09-23", t - timedelta(days=1), True),
        BackupPoint("mar09-22 failed", t - timedelta(days=1, hours=1), False),
        # Backups stopped for three weeks: the rules count days that have a backup.
        BackupPoint("feb15-23", datetime(2026, 2, 15, 23, 0, tzinfo=UTC), True),
        BackupPoint("feb14-23", datetime(2026, 2, 14, 23, 0, tzinfo=UTC), True),
        BackupPoint("jan31-23", datetime(2026, 1, 31, 23, 0, tzinfo=UTC), True),
    ]
    policy = RetentionPolicy(hourly=1, daily=3, weekly=0, monthly=0)
    assert retention_keep(points, policy) == {
        "mar10-23 failed",  # newer than the newest good backup: says something is wrong now
        "mar10-22",  # the hour, and the day (the failed 23:00 fills nothing)
        "mar09-23",
        "feb15-23",
    }
    assert retention_keep(points, RetentionPolicy(0, 0, 2, 2)) == {
        "mar10-23 failed",
        "mar10-22",  # this ISO week and this month
        "feb15-23",  # the previous week with a backup (ISO week 7) and February
    }


def test_prune_deletes_the_files_and_records_of_400_days_but_the_expected_set(
    db: None, settings: Any, tmp_path: Path
) -> None:
    settings.BACKUP_DIR = str(tmp_path)
    database = connection.settings_dict["NAME"]
    backups = []
    for point in hourly_points():
        dump = new_dump_path(database, point.at)
        dump.parent.mkdir(parents=True, exist_ok=True)
        for path in companions(dump):
            path.write_text("x")
        backups.append(
            Backup(
                database=database,
                status="ok",
                verified=True,
                started_at=point.at,
                finished_at=point.at + timedelta(seconds=5),
                path=str(dump),
                size_bytes=1,
            )
        )
    Backup.objects.bulk_create(backups)
    # Another database's backups (a restored copy's history) are not this one's to prune.
    Backup.objects.create(
        database="elsewhere", status="ok", verified=True, started_at=START, finished_at=START
    )
    out = StringIO()

    call_command("db_backup", "--prune-only", stdout=out)

    expected = expected_survivors()
    assert (
        out.getvalue()
        == f"retention: {HOURS - 42} backup(s) deleted ({3 * (HOURS - 42)} files), 42 kept\n"
    )
    kept = Backup.objects.filter(database=database)
    assert set(kept.values_list("started_at", flat=True)) == expected
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(p for b in kept for p in companions(Path(b.path)))
    assert Backup.objects.filter(database="elsewhere").count() == 1
    # Emptied day folders are gone: one per surviving day (and the month/year above them).
    days = {p.parent for p in files}
    assert sorted(p for p in (tmp_path / database).glob("*/*/*")) == sorted(days)
    event = SystemEvent.objects.get(event_type="backups_pruned")
    assert event.details["files_deleted"] == 3 * (HOURS - 42)
    assert len(event.details["deleted_ids"]) == HOURS - 42

    # A second run finds nothing to do and records nothing.
    out = StringIO()
    call_command("db_backup", "--prune-only", stdout=out)
    assert out.getvalue() == "retention: 0 backup(s) deleted (0 files), 42 kept\n"
    assert SystemEvent.objects.filter(event_type="backups_pruned").count() == 1


@pytest.mark.parametrize("keep", [0, 1])
def test_prune_never_deletes_the_newest_verified_backup(
    db: None, settings: Any, tmp_path: Path, keep: int
) -> None:
    settings.BACKUP_DIR = str(tmp_path)
    settings.BACKUP_KEEP_HOURLY = settings.BACKUP_KEEP_DAILY = keep
    settings.BACKUP_KEEP_WEEKLY = settings.BACKUP_KEEP_MONTHLY = keep
    database = connection.settings_dict["NAME"]
    rows = {}
    for name, hours_ago, verified in [
        ("new failed", 0, False),
        ("good", 1, True),
        ("old", 30, True),
    ]:
        at = LAST - timedelta(hours=hours_ago)
        dump = new_dump_path(database, at)
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text("x")
        rows[name] = Backup.objects.create(
            database=database,
            status="ok" if verified else "failed",
            verified=verified,
            started_at=at,
            finished_at=at,
            path=str(dump) if verified else "",
        )

    call_command("db_backup", "--prune-only", stdout=StringIO())

    # keep=1: one hour, day, week and month, all filled by "good" (the failed one fills none).
    assert set(Backup.objects.values_list("id", flat=True)) == {
        rows["new failed"].pk,
        rows["good"].pk,
    }
    assert Path(rows["good"].path).exists()
    assert not Path(rows["old"].path).exists()
