"""An import marks the bot's daily risk rows stale from the earliest day it wrote (in its
transaction); after it commits, the marked days are redone and the views refreshed: two tasks
queued on commit to the real broker, none for a dry run or a run that changed nothing."""

import json
from collections.abc import Iterator
from datetime import UTC
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Min
from django.utils import timezone
from redis import Redis

from analytics import tasks
from tests.importers.legacy_support import LEGACY, MOMENTUM_DB
from trading.models import AccountBalance, Position, RiskMetric, RiskMetricsBacklog, Trade

pytestmark = pytest.mark.django_db

FOLLOW_UPS = {tasks.RISK_METRICS_BACKFILL, tasks.VIEWS_REFRESH}


@pytest.fixture
def broker() -> Iterator[Redis]:
    """The broker's default queue, with the messages this test queued taken out afterwards."""
    with Redis.from_url(settings.CELERY_BROKER_URL) as client:
        yield client
        for raw in client.lrange("celery", 0, -1):
            if json.loads(raw)["headers"]["task"] in FOLLOW_UPS:
                client.lrem("celery", 1, raw)


def queued(broker: Redis) -> list[tuple[str, str]]:
    messages = [json.loads(raw)["headers"] for raw in broker.lrange("celery", 0, -1)]
    return sorted((h["task"], h["argsrepr"]) for h in messages if h["task"] in FOLLOW_UPS)


def run(*args: str) -> None:
    call_command("import_momentum", "--source", str(MOMENTUM_DB), *args, stdout=StringIO())


def test_a_real_import_queues_the_backfill_from_its_earliest_day_and_a_refresh(
    broker: Redis, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run()

    rows = [
        Trade.objects.aggregate(t=Min("entry_time"))["t"],
        AccountBalance.objects.aggregate(t=Min("ts"))["t"],
        Position.objects.aggregate(t=Min("opened_at"))["t"],
    ]
    first_day = min(rows).astimezone(UTC).date()
    assert list(RiskMetricsBacklog.objects.values_list("bot_id", "since")) == [
        ("momentum_001", first_day)
    ]
    assert queued(broker) == [(tasks.RISK_METRICS_BACKFILL, "()"), (tasks.VIEWS_REFRESH, "()")]

    # What the worker then does: one row per day from the first day to today, the mark cleared.
    written = tasks.risk_metrics_backfill()
    today = timezone.now().astimezone(UTC).date()
    days = (today - first_day).days + 1
    assert written == days
    assert not RiskMetricsBacklog.objects.exists()
    assert RiskMetric.objects.filter(bot_id="momentum_001").count() == days
    assert RiskMetric.objects.filter(bot_id="momentum_001").earliest("date").date == first_day


def test_a_dry_run_or_a_run_that_changes_nothing_queues_nothing(
    broker: Redis, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run("--dry-run")
    assert queued(broker) == []
    assert not RiskMetricsBacklog.objects.exists()  # rolled back with the rows

    run()  # its callbacks are not run: the test's transaction never commits
    with django_capture_on_commit_callbacks(execute=True):
        run()
    assert queued(broker) == []


def test_a_freqtrade_import_queues_them_too(
    broker: Redis, django_capture_on_commit_callbacks: Any
) -> None:
    source = LEGACY / "freqtrade.sqlite"
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "import_freqtrade",
            *("--source", str(source), "--bot-id", "ft_follow", "--initial-capital", "10000"),
            stdout=StringIO(),
        )

    first = min(
        Trade.objects.filter(bot_id="ft_follow").aggregate(t=Min("entry_time"))["t"],
        AccountBalance.objects.filter(bot_id="ft_follow").aggregate(t=Min("ts"))["t"],
    )
    assert list(RiskMetricsBacklog.objects.values_list("bot_id", "since")) == [
        ("ft_follow", first.astimezone(UTC).date())
    ]
    assert queued(broker) == [(tasks.RISK_METRICS_BACKFILL, "()"), (tasks.VIEWS_REFRESH, "()")]
