"""Two sessions open a run of one bot at once (trading.services.runs.bot_run_open): the second
waits for the first's lock on the bot, then sees its run; never two open runs, never two rows
for one (bot, started_at)."""

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from tests.factories import make_bot
from trading.models import BotRun, RunStatus
from trading.services.runs import bot_run_open

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
T1 = datetime(2026, 1, 5, 8, 0, 1, tzinfo=UTC)


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _race(second_started_at: datetime) -> tuple[dict[str, Any], dict[str, Any], bool]:
    bot = make_bot("racer_001")
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    opened = threading.Event()
    release = threading.Event()

    def open_first() -> None:
        try:
            with transaction.atomic():
                first["run"], first["created"] = bot_run_open(bot=bot, mode="live", started_at=T0)
                first["pid"] = connection.connection.info.backend_pid
                opened.set()
                release.wait(10)  # in flight: the bot row locked, the run not yet committed
        finally:
            connection.close()

    def open_second() -> None:
        try:
            connection.ensure_connection()
            second["pid"] = connection.connection.info.backend_pid
            second["run"], second["created"] = bot_run_open(
                bot=bot, mode="live", started_at=second_started_at
            )
        finally:
            connection.close()

    a = threading.Thread(target=open_first)
    a.start()
    assert opened.wait(10)
    b = threading.Thread(target=open_second)
    b.start()
    waited = False
    for _ in range(50):  # up to 5 s for the second session to reach the lock
        time.sleep(0.1)
        if "pid" in second and _waiting_on_a_lock(second["pid"]):
            waited = True
            break
    release.set()
    a.join(10)
    b.join(10)
    assert not a.is_alive() and not b.is_alive()
    return first, second, waited


@pytest.mark.django_db(transaction=True)
def test_two_sessions_opening_the_same_run_get_one_run() -> None:
    first, second, waited = _race(T0)

    assert waited, "the second session did not wait for the first's lock"
    assert (first["created"], second["created"]) == (True, False)
    assert second["run"].pk == first["run"].pk
    assert list(BotRun.objects.values_list("started_at", "status")) == [(T0, RunStatus.OPEN)]


@pytest.mark.django_db(transaction=True)
def test_two_sessions_opening_two_runs_leave_the_later_one_open() -> None:
    first, second, waited = _race(T1)

    assert waited
    assert (first["created"], second["created"]) == (True, True)
    runs = list(BotRun.objects.order_by("started_at").values_list("pk", "status", "ended_at"))
    assert runs == [
        (first["run"].pk, RunStatus.CRASHED, T1),
        (second["run"].pk, RunStatus.OPEN, None),
    ]
