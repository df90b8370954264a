"""The all-time bot summary read from a checkpoint plus the trades since its cut
(analytics.selectors.summary_checkpoint, analytics.services.summaries).

Every figure must equal, to the last digit the API shows, the summary statement over all the
trades (``full``): on the hand-computed fixture at every cut, on randomized trades (same-second
exits, losses on both sides of the cut, a deep drawdown across it, days without trades,
fractional-second durations, a trade opened before every other that closes after the cut), and
after trades before the cut are added, changed or deleted. Real PostgreSQL, no mocks; the
summary cache is off, so every read computes.
"""

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from analytics.models import BotSummaryCheckpoint
from analytics.selectors import bot_summary
from analytics.selectors.bots import full_summary_row, summary_from_row
from analytics.selectors.common import bot_scope
from analytics.selectors.summary_checkpoint import CHECKPOINT_COLUMNS, checkpoint_summary_sql
from analytics.services import bot_summary_checkpoint_build, bot_summary_checkpoints_refresh
from analytics.services.summaries import summary_cut
from analytics.tasks import summary_checkpoints_refresh_task
from tests.analytics.test_metrics import MIXED, at, close
from tests.analytics.test_tasks import other_connection
from tests.factories import make_balance, make_bot, make_trade
from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db

NO_CACHE = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
D0 = at(0, 0)  # the fixture's first day, a UTC midnight


@pytest.fixture(autouse=True)
def no_summary_cache() -> Iterator[None]:
    with override_settings(CACHES=NO_CACHE):
        yield


def full(bot: Bot) -> dict[str, Any]:
    """The summary from the whole statement over all the trades: what the checkpoint must give."""
    scope = bot_scope(bot=bot, since=None, until=None, include_backtest=False)
    row = full_summary_row(scope=scope)
    return summary_from_row(bot=bot, row=row, since=None, until=None, backtest=False)


def same_rows(bot: Bot) -> None:
    """The checkpoint's row equals the whole statement's before any rounding: every float8 the
    same double, every numeric the same digits and scale (repr), so no figure can differ."""
    scope = bot_scope(bot=bot, since=None, until=None, include_backtest=False)
    whole = full_summary_row(scope=scope)
    with connection.cursor() as cursor:
        cursor.execute(checkpoint_summary_sql(scope), scope.params)
        names = [col.name for col in cursor.description]
        found = dict(zip(names, cursor.fetchone() or (), strict=True))
    assert found.pop("checkpoint_usable") is True
    for name in CHECKPOINT_COLUMNS[1:]:
        found.pop(name)
    assert {k: repr(v) for k, v in found.items()} == {k: repr(v) for k, v in whole.items()}


def read(bot: Bot, *, statements: int = 2) -> dict[str, Any]:
    """bot_summary, checking it ran ``statements`` statements and computed the figures from the
    checkpoint (2: the probe, then the checkpoint with the later trades; 3: the probe, the
    checkpoint rebuilt, then read)."""
    with CaptureQueriesContext(connection) as queries:
        summary = bot_summary(bot=bot)
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == statements, sql
    assert "analytics.bot_summary_from_checkpoint(" in sql[-1]
    if statements == 3:
        assert "INSERT INTO analytics.bot_summary_checkpoints" in sql[1]
    return summary


def build(bot: Bot, cut: datetime) -> None:
    assert bot_summary_checkpoint_build(bot=bot, cut=cut) is True


def versions_row(bot: Bot) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version, checkpoint_version, earliest_exit_touched"
            " FROM analytics.bot_trade_versions WHERE bot_id = %s",
            [bot.bot_id],
        )
        found = cursor.fetchone()
    assert found is not None
    return tuple(found)


@pytest.fixture
def mixed(bot: Bot) -> Bot:
    for entry, exit_, pnl, reason, tag in MIXED:
        close(bot, entry, exit_, pnl, exit_reason=reason, entry_tag=tag)
    return bot


# --- The same figures as the whole statement ---------------------------------------------------


@pytest.mark.parametrize("cut_day", range(-1, 12))
def test_the_hand_computed_fixture_at_every_cut(mixed: Bot, cut_day: int) -> None:
    # Cut before every trade, inside the drawdown (peak on day 0, trough on day 1), between the
    # breakeven and the recovery, and after the last trade (day 9).
    build(mixed, D0 + timedelta(days=cut_day))

    s = read(mixed)

    assert s == full(mixed)
    same_rows(mixed)
    assert (s["max_drawdown_pct"], s["max_drawdown_peak_at"]) == (19.047619, at(0, 13))
    assert (s["max_drawdown_trough_at"], s["trades_closed"]) == (at(1, 14), 6)
    assert f"{s['avg_loss_usd']:f}" == "766.66666667"


def random_trades(bot: Bot, seed: int, *, days: int = 40) -> list[Trade]:
    """Several hundred closed trades over ``days`` days: clusters exiting on the same second,
    days without trades, fractional-second durations, a deep drawdown from day 15 to day 25,
    fees and volumes of every scale; plus backtests and open trades that must not count."""
    rng = random.Random(seed)
    trades: list[Trade] = []

    def add(entry: datetime, exit_: datetime, pnl: Decimal, **fields: Any) -> None:
        qty = Decimal(rng.randint(1, 10**6)) / Decimal(10**4)
        trades.append(
            Trade(
                bot=bot,
                trade_id=f"r{seed}-{len(trades)}",
                symbol="BTC/USDT",
                exchange="binance",
                side="long",
                quantity=qty,
                entry_price=Decimal(rng.randint(10**5, 10**9)) / Decimal(10**4),
                exit_price=Decimal("1"),
                entry_time=entry,
                exit_time=exit_,
                fees_usd=Decimal(rng.randint(0, 10**9)) / Decimal(10**8),
                pnl_usd=pnl,
                status=fields.pop("status", "closed"),
                **fields,
            )
        )

    quiet = set(rng.sample(range(days), 8))
    for day in range(days):
        if day in quiet:
            continue
        drift = -60 if 15 <= day <= 25 else 8  # the drawdown, across a cut at day 20
        for _ in range(rng.randint(3, 15)):
            exit_ = D0 + timedelta(days=day, seconds=rng.randint(0, 86399))
            entry = exit_ - timedelta(
                seconds=rng.randint(0, 3 * 86400), microseconds=rng.randint(0, 999999)
            )
            pnl = Decimal(rng.randint(-500_00000000, 500_00000000) + drift * 10**8) / 10**8
            if rng.random() < 0.05:
                pnl = Decimal("0")
            add(entry, exit_, pnl)
            if rng.random() < 0.15:  # another trade closing on the same second
                add(entry, exit_, (-pnl / 2).quantize(Decimal("0.00000001")))
    # One that opened before every other trade and closes on the last day.
    add(D0 - timedelta(days=3, hours=5), D0 + timedelta(days=days - 1, hours=23), Decimal("-1.5"))
    add(D0 + timedelta(days=1), D0 + timedelta(days=2), Decimal("9999"), source="backtest")
    add(D0 + timedelta(days=1), D0 + timedelta(days=30), Decimal("5"), status="cancelled")
    rng.shuffle(trades)  # ids need not follow exit times
    Trade.objects.bulk_create(trades)
    make_trade(bot, entry_time=D0 + timedelta(days=days - 1))  # open
    return trades


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_trades_at_several_cuts(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Old cuts with hundreds of later trades: keep the read from moving the cut to today.
    monkeypatch.setattr("analytics.selectors.bots.CHECKPOINT_REBUILD_LATER_TRADES", 10**6)
    bot = make_bot(f"random_{seed}", initial_capital_usd=Decimal("20000.12345678"))
    trades = random_trades(bot, seed)
    assert len(trades) > 300
    expected = full(bot)
    assert expected["max_drawdown_pct"] > 0 and expected["sortino"] is not None

    for cut_day in (-5, 1, 10, 18, 20, 23, 39, 45):
        build(bot, D0 + timedelta(days=cut_day))
        assert read(bot) == expected, cut_day
        same_rows(bot)


def test_a_read_moves_an_old_cut_with_many_later_trades(
    mixed: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("analytics.selectors.bots.CHECKPOINT_REBUILD_LATER_TRADES", 1)
    build(mixed, CUT)  # two trades after it

    with CaptureQueriesContext(connection) as queries:
        s = bot_summary(bot=mixed)

    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 3 and "INSERT INTO analytics.bot_summary_checkpoints" in sql[2]
    assert s == full(mixed)
    assert BotSummaryCheckpoint.objects.get(bot=mixed).cut == summary_cut()
    assert read(mixed) == s


def test_a_bot_whose_trades_all_close_after_the_cut(mixed: Bot) -> None:
    build(mixed, D0 - timedelta(days=30))

    checkpoint = BotSummaryCheckpoint.objects.get(bot=mixed)
    assert (checkpoint.trades_closed, checkpoint.first_trade_at, checkpoint.daily_returns) == (
        0,
        None,
        [],
    )
    assert read(mixed) == full(mixed)


def test_a_bot_with_open_trades_only_and_one_with_none(bot: Bot) -> None:
    # No trade ever: nothing to build, the whole (empty) statement answers.
    with CaptureQueriesContext(connection) as queries:
        empty = bot_summary(bot=bot)
    assert len(queries.captured_queries) == 2  # the probe, the whole statement
    assert empty == full(bot)
    assert not BotSummaryCheckpoint.objects.filter(bot=bot).exists()

    make_trade(bot, entry_time=at(0, 1))
    s = read(bot, statements=3)
    assert (s["trades_closed"], s["trades_open"], s["first_trade_at"]) == (0, 1, None)
    assert s == full(bot)


# --- What invalidates a checkpoint, and what does not --------------------------------------------


CUT = D0 + timedelta(days=4)  # after the drawdown and the recovery's entry, before its exit


def test_a_late_trade_before_the_cut_rebuilds_the_checkpoint(mixed: Bot) -> None:
    build(mixed, CUT)
    assert read(mixed) == full(mixed)

    close(mixed, at(2, 1), at(2, 2), "-3000")  # a new, deeper trough, before the cut

    s = read(mixed, statements=3)
    assert s == full(mixed)
    assert (s["trades_closed"], s["max_drawdown_trough_at"]) == (7, at(2, 2))
    assert read(mixed) == s  # rebuilt and armed: served again


def test_changing_or_deleting_a_trade_before_the_cut_rebuilds_it(mixed: Bot) -> None:
    build(mixed, CUT)
    first = Trade.objects.get(bot=mixed, exit_time=at(0, 13))

    Trade.objects.filter(pk=first.pk).update(pnl_usd=Decimal("700.5"))
    changed = read(mixed, statements=3)
    assert changed == full(mixed)
    assert f"{changed['net_pnl_usd']:f}" == "400.50000000"

    Trade.objects.filter(pk=first.pk).delete()
    deleted = read(mixed, statements=3)
    assert deleted == full(mixed)
    assert deleted["trades_closed"] == 5

    # A trade moved from after the cut to before it changes the checkpoint's trades too.
    moved = Trade.objects.filter(bot=mixed, exit_time=at(9, 10))
    assert moved.update(entry_time=at(2, 0), exit_time=at(2, 1)) == 1
    assert read(mixed, statements=3) == full(mixed)


def test_trades_after_the_cut_keep_the_checkpoint(mixed: Bot) -> None:
    build(mixed, CUT)
    version = versions_row(mixed)[0]

    close(mixed, at(10, 1), at(10, 2), "-4000")  # a deeper trough from the peak before the cut
    make_trade(mixed, entry_time=at(10, 3))  # open
    Trade.objects.filter(bot=mixed, exit_time=at(9, 10)).update(pnl_usd=Decimal("-301"))
    make_balance(mixed, ts=at(11, 0), equity_usd=Decimal("6000.25"))

    s = read(mixed)
    assert versions_row(mixed) == (version + 3, version, at(9, 10))
    assert s == full(mixed)
    assert (s["trades_closed"], s["trades_open"], s["max_drawdown_trough_at"]) == (7, 1, at(10, 2))
    assert s["max_drawdown_peak_at"] == at(4, 10)  # back at 10,500 exactly after the recovery
    assert (f"{s['reported_equity_usd']:f}", s["reported_equity_at"]) == (
        "6000.25000000",
        at(11, 0),
    )


def test_backtests_and_open_trades_before_the_cut_do_not_touch_it(mixed: Bot) -> None:
    build(mixed, CUT)
    version, _, _ = versions_row(mixed)

    close(mixed, at(2, 1), at(2, 2), "-3000", source="backtest")
    make_trade(mixed, entry_time=at(1, 0))

    assert versions_row(mixed) == (version + 2, version, None)
    assert read(mixed) == full(mixed)

    # ...until a backtest becomes a live trade.
    Trade.objects.filter(bot=mixed, source="backtest").update(source="live")
    assert versions_row(mixed)[2] == at(2, 2)
    s = read(mixed, statements=3)
    assert s == full(mixed) and s["trades_closed"] == 7


def test_a_new_initial_capital_rebuilds_it(mixed: Bot) -> None:
    build(mixed, CUT)

    Bot.objects.filter(pk=mixed.pk).update(initial_capital_usd=Decimal("20000"))
    mixed.refresh_from_db()

    s = read(mixed, statements=3)
    assert s == full(mixed)
    assert f"{s['equity_usd']:f}" == "20200.00000000"


def test_a_checkpoint_not_armed_at_its_version_is_not_used(mixed: Bot) -> None:
    build(mixed, CUT)
    BotSummaryCheckpoint.objects.filter(bot=mixed).update(net_pnl_usd=Decimal("123"))
    assert read(mixed)["net_pnl_usd"] != full(mixed)["net_pnl_usd"]  # the read trusts it...

    with connection.cursor() as cursor:  # ...while it is armed at its version
        cursor.execute(
            "UPDATE analytics.bot_trade_versions SET checkpoint_version = checkpoint_version - 1"
            " WHERE bot_id = %s",
            [mixed.bot_id],
        )
    assert read(mixed, statements=3) == full(mixed)


def test_the_cut_is_a_utc_midnight(mixed: Bot) -> None:
    with pytest.raises(ValueError, match="midnight"):
        bot_summary_checkpoint_build(bot=mixed, cut=CUT + timedelta(hours=1))
    assert summary_cut(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_other_scopes_read_all_the_trades(mixed: Bot, django_assert_num_queries: Any) -> None:
    build(mixed, CUT)

    with django_assert_num_queries(2) as queries:
        period = bot_summary(bot=mixed, since=at(1, 12), until=at(9, 0))
    assert "bot_summary_from_checkpoint" not in queries.captured_queries[1]["sql"]
    assert period["trades_closed"] == 3
    with django_assert_num_queries(2):
        assert bot_summary(bot=mixed, include_backtest=True)["trades_closed"] == 6


# --- Races ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_trade_committed_while_the_checkpoint_is_built_is_not_lost() -> None:
    bot = make_bot("racer")
    for entry, exit_, pnl, reason, tag in MIXED:
        close(bot, entry, exit_, pnl, exit_reason=reason, entry_tag=tag)
    # The watcher autocommits: a fresh view of pg_stat_activity on every poll.
    other, watcher = other_connection(), other_connection()
    other.autocommit = False
    try:
        # Another session writes a late trade (before the cut) and holds its transaction open:
        # its version bump holds the bot's versions row.
        other.execute(
            "INSERT INTO trading.trades (bot_id, trade_id, symbol, exchange, side, quantity,"
            " entry_price, exit_price, entry_time, exit_time, fees_usd, pnl_usd, status, source,"
            " leverage, exit_reason, entry_tag, strategy_data, created_at, updated_at)"
            " VALUES (%s, 'late', 'BTC/USDT', 'binance', 'long', 1, 100, 90, %s, %s, 0, -2500,"
            " 'closed', 'live', 1, '', '', '{}', now(), now())",
            [bot.bot_id, at(2, 1), at(2, 2)],
        )
        armed: list[bool | BaseException] = []

        def build_checkpoint() -> None:
            try:
                armed.append(bot_summary_checkpoint_build(bot=bot, cut=CUT))
            except BaseException as exc:
                armed.append(exc)
                raise
            finally:
                connection.close()

        builder = threading.Thread(target=build_checkpoint)
        builder.start()
        # The build's snapshot does not see the late trade; it waits to arm. (Found by the
        # start of its text: pg_stat_activity cuts a query at 1 kB.)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'WITH ver AS MATERIALIZED%%'"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"the build never waited for the other session's version bump: {armed}")
        other.commit()
        builder.join(10)
    finally:
        other.close()
        watcher.close()

    assert armed == [False]  # built from the snapshot before the late trade: not armed
    assert BotSummaryCheckpoint.objects.get(bot=bot).trades_closed == 4  # the 4 before the cut
    s = read(bot, statements=3)
    assert s == full(bot)
    assert (s["trades_closed"], s["max_drawdown_trough_at"]) == (7, at(2, 2))


# --- The refresh, and the trigger that keeps the versions ----------------------------------------


def test_refresh_builds_what_does_not_serve_and_is_idempotent(mixed: Bot) -> None:
    other = make_bot("other_001")
    close(other, at(0, 1), at(0, 2), "10")
    make_bot("never_traded")
    today = summary_cut()

    assert bot_summary_checkpoints_refresh() == 2
    assert bot_summary_checkpoints_refresh() == 0
    assert set(BotSummaryCheckpoint.objects.values_list("bot_id", "cut")) == {
        ("momentum_001", today),
        ("other_001", today),
    }

    close(mixed, at(2, 1), at(2, 2), "-1")  # before the cut
    assert summary_checkpoints_refresh_task() == 1
    assert read(mixed) == full(mixed)
    # A checkpoint of an earlier day is moved to today's cut.
    build(other, CUT)
    assert bot_summary_checkpoints_refresh() == 1
    assert BotSummaryCheckpoint.objects.get(bot=other).cut == today


def test_the_trigger_keeps_the_earliest_exit_touched(bot: Bot) -> None:
    close(bot, at(5, 0), at(5, 1), "1")
    build(bot, at(20, 0))
    version = versions_row(bot)[0]
    assert versions_row(bot) == (version, version, None)

    close(bot, at(7, 0), at(7, 1), "1")
    assert versions_row(bot) == (version + 1, version, at(7, 1))
    trade = close(bot, at(5, 12), at(30, 0), "1")
    assert versions_row(bot) == (version + 2, version, at(7, 1))
    Trade.objects.filter(pk=trade.pk).update(exit_time=at(6, 0))  # new exit is the earliest
    assert versions_row(bot) == (version + 3, version, at(6, 0))
    Trade.objects.filter(exit_time=at(5, 1)).delete()  # old exit is the earliest
    assert versions_row(bot) == (version + 4, version, at(5, 1))
