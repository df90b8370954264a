"""`manage.py setup_periodic_tasks`: the beat schedule, by name, safe on every release."""

from io import StringIO
from typing import Any

from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

OURS = [
    "analytics.portfolio_snapshot",
    "analytics.risk_metrics_rollup_today",
    "analytics.summary_checkpoints_refresh",
    "analytics.views_refresh",
    "analytics.risk_limits_check",
    "analytics.heartbeat_stale_check",
    "analytics.derived_candles_catch_up",
    "analytics.predictions_maintain",
    "audit.data_quality_check",
    "audit.db_backup",
    "audit.market_data_maintenance",
    "alerts.deliver",
    "alerts.escalate",
    "analytics.report_daily",
    "analytics.report_weekly",
]


def setup() -> list[str]:
    out = StringIO()
    call_command("setup_periodic_tasks", stdout=out)
    return out.getvalue().splitlines()


def state() -> list[tuple[Any, ...]]:
    return list(
        PeriodicTask.objects.order_by("name").values_list(
            "name", "task", "enabled", "interval_id", "crontab_id", "description", "date_changed"
        )
    )


def schedule_of(name: str) -> str:
    task = PeriodicTask.objects.get(name=name)
    if task.interval is not None:
        return f"every {task.interval.every} {task.interval.period}"
    days = "" if task.crontab.day_of_week == "*" else f" on day {task.crontab.day_of_week}"
    return f"cron {task.crontab.minute} {task.crontab.hour}{days} (UTC)"


def test_the_first_run_creates_every_entry(db: None) -> None:
    assert setup() == [f"created   {name}" for name in OURS]

    assert {name: schedule_of(name) for name in OURS} == {
        "analytics.portfolio_snapshot": "cron */5 * (UTC)",
        "analytics.risk_metrics_rollup_today": "cron */15 * (UTC)",
        "analytics.summary_checkpoints_refresh": "cron 2,17,32,47 * (UTC)",
        "analytics.views_refresh": "cron 1-59/5 * (UTC)",
        "analytics.risk_limits_check": "cron * * (UTC)",
        "analytics.heartbeat_stale_check": "cron * * (UTC)",
        "analytics.derived_candles_catch_up": "cron * * (UTC)",
        "analytics.predictions_maintain": "cron 3-59/5 * (UTC)",
        "audit.data_quality_check": "cron 7 * (UTC)",
        "audit.db_backup": "cron 17 * (UTC)",
        "audit.market_data_maintenance": "cron 23 * (UTC)",
        "alerts.deliver": "every 2 seconds",
        "alerts.escalate": "every 30 seconds",
        "analytics.report_daily": "cron 5 0 (UTC)",
        "analytics.report_weekly": "cron 10 0 on day 1 (UTC)",
    }
    assert all(t.task == t.name and t.enabled for t in PeriodicTask.objects.all())


def test_a_second_run_changes_nothing(db: None) -> None:
    setup()
    before = state()
    counts = IntervalSchedule.objects.count(), CrontabSchedule.objects.count()

    assert setup() == [f"unchanged {name}" for name in OURS]

    assert state() == before
    assert (IntervalSchedule.objects.count(), CrontabSchedule.objects.count()) == counts


def test_staff_entries_are_kept_and_a_paused_entry_stays_paused(db: None) -> None:
    setup()
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="nightly report", task="reports.nightly", interval=hourly)
    PeriodicTask.objects.filter(name="analytics.views_refresh").update(enabled=False)
    # Staff moved an entry of the code to another schedule: the code's schedule wins.
    PeriodicTask.objects.filter(name="analytics.risk_limits_check").update(interval=hourly)

    lines = setup()

    assert "updated   analytics.risk_limits_check" in lines
    assert "unchanged analytics.views_refresh" in lines
    assert lines[-1] == "left      nightly report (not scheduled by the code)"
    assert schedule_of("analytics.risk_limits_check") == "cron * * (UTC)"
    assert PeriodicTask.objects.get(name="analytics.views_refresh").enabled is False
    assert PeriodicTask.objects.get(name="nightly report").task == "reports.nightly"
