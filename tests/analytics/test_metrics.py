"""One bot's figures (analytics.selectors) pinned on hand-computed trades (METRICS.md).

Money is checked as exact Decimal strings. Sharpe, Sortino and CAGR are checked against numpy
on a daily series built here from the fixture's trades, not by the selectors. Every selector's
query count is pinned, and where the materialized views hold a figure, the selector equals it.
"""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.db import connection

from analytics.models import BotDailyPerformance, BotPerformanceSummary
from analytics.selectors import bot_breakdown, bot_equity_curve, bot_performance, bot_summary
from analytics.sql import MATERIALIZED_VIEWS
from tests.factories import make_balance, make_closed_trade, make_trade
from trading.models import Bot, Trade
from trading.services.ingest.trades import trade_derived_fields, trade_upsert_many

pytestmark = pytest.mark.django_db

D0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return D0 + timedelta(days=day, hours=hour, minutes=minute)


# (entry, exit, pnl, exit_reason, entry_tag): a win, a deep drawdown over two losses, a
# breakeven, the recovery to the old peak exactly, and a last loss.
MIXED = [
    (at(0, 12), at(0, 13), "500", "roi", "breakout"),
    (at(1, 10), at(1, 11), "-1200", "stop_loss", "breakout"),
    (at(1, 12), at(1, 14), "-800", "stop_loss", "pullback"),
    (at(3, 9), at(3, 10), "0", "exit_signal", ""),
    (at(3, 10), at(4, 10), "2000", "roi", "pullback"),
    (at(8, 10), at(9, 10), "-300", "trailing_stop", "breakout"),
]


def close(bot: Bot, entry: datetime, exit_: datetime, pnl: str, **fields: Any) -> Trade:
    return make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        entry_time=entry,
        exit_time=exit_,
        fees_usd=Decimal("5"),
        **fields,
    )


@pytest.fixture
def mixed(bot: Bot) -> Bot:
    for entry, exit_, pnl, reason, tag in MIXED:
        close(bot, entry, exit_, pnl, exit_reason=reason, entry_tag=tag)
    return bot


def txt(value: Any) -> str:
    """A Decimal as the API writes it (no exponent)."""
    return f"{value:f}" if isinstance(value, Decimal) else str(value)


def refresh_views() -> None:
    with connection.cursor() as cursor:
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")


# --- The daily series, built here from the trades (METRICS.md "daily return") ----------------


def daily_returns(trades: list[tuple[datetime, datetime, str]], start: float) -> np.ndarray:
    first = min(entry for entry, _, _ in trades).date()
    last = max(exit_ for _, exit_, _ in trades).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    pnl = {day: 0.0 for day in days}
    for _, exit_, value in trades:
        pnl[exit_.date()] += float(value)
    returns, equity = [], start
    for day in days:
        returns.append(pnl[day] / equity)
        equity += pnl[day]
    return np.array(returns)


def numpy_sharpe(r: np.ndarray) -> float:
    return float(np.mean(r) / np.std(r, ddof=1) * np.sqrt(365))


def numpy_sortino(r: np.ndarray) -> float:
    downside = np.sqrt(np.mean(np.square(np.minimum(r, 0))))
    return float(np.mean(r) / downside * np.sqrt(365))


def numpy_cagr(start: float, end: float, first: datetime, last: datetime) -> float:
    days = max((last - first).total_seconds() / 86400, 1)
    return float(np.power(end / start, 365 / days) - 1)


# --- The summary -------------------------------------------------------------------------------


def test_summary_of_a_long_run_with_a_deep_drawdown(
    mixed: Bot, django_assert_num_queries: Any
) -> None:
    # The trades' version (nothing cached, no summary checkpoint), the checkpoint built, the
    # figures from it (tests/analytics/test_summary_checkpoints.py).
    with django_assert_num_queries(3):
        s = bot_summary(bot=mixed)

    money = {k: txt(v) for k, v in s.items() if k.endswith("_usd") and v is not None}
    assert money == {
        "initial_capital_usd": "10000.00000000",
        "equity_usd": "10200.00000000",
        "gross_profit_usd": "2500.00000000",
        "gross_loss_usd": "2300.00000000",
        "net_pnl_usd": "200.00000000",
        "expectancy_usd": "33.33333333",
        "avg_win_usd": "1250.00000000",
        "avg_loss_usd": "766.66666667",
        "best_trade_usd": "2000.00000000",
        "worst_trade_usd": "-1200.00000000",
        "fees_usd": "30.00000000",
        "volume_usd": "180000.00000000",
        "max_drawdown_usd": "2000.00000000",
    }
    assert (s["trades_closed"], s["trades_open"], s["wins"], s["losses"], s["breakeven"]) == (
        6,
        0,
        2,
        3,
        1,
    )
    assert s["win_rate"] == 0.333333
    assert s["profit_factor"] == 1.086957  # 2500 / 2300
    assert s["expectancy_ratio"] == -0.123188  # (1 + 1250 / 766.67) x 1/3 - 1
    assert (s["avg_duration_s"], s["avg_win_duration_s"], s["avg_loss_duration_s"]) == (
        31800.0,  # (1 + 1 + 2 + 1 + 24 + 24 h) / 6
        45000.0,  # (1 + 24 h) / 2
        32400.0,  # (1 + 2 + 24 h) / 3
    )
    # Peak 10,500 after the first trade, trough 8,500 after the third: 2000 / 10500.
    assert s["max_drawdown_pct"] == 19.047619
    assert s["max_drawdown_peak_at"] == at(0, 13)
    assert s["max_drawdown_trough_at"] == at(1, 14)  # the breakeven at 8,500 is a tie: first
    assert (s["first_trade_at"], s["last_trade_at"]) == (at(0, 12), at(9, 10))
    assert s["days"] == 8.916667  # 8 days 22 hours
    assert (s["reported_equity_usd"], s["reported_equity_at"]) == (None, None)

    r = daily_returns([(e, x, p) for e, x, p, _, _ in MIXED], 10000.0)
    assert len(r) == 10
    assert s["sharpe"] == pytest.approx(numpy_sharpe(r), abs=1e-6)
    assert s["sortino"] == pytest.approx(numpy_sortino(r), abs=1e-6)
    cagr = numpy_cagr(10000, 10200, at(0, 12), at(9, 10))
    assert s["cagr"] == pytest.approx(cagr, abs=1e-6)
    assert s["calmar"] == pytest.approx(cagr / (2000 / 10500), abs=1e-6)


def test_summary_with_no_trades(bot: Bot) -> None:
    s = bot_summary(bot=bot)

    assert (s["trades_closed"], s["wins"], s["losses"], s["breakeven"]) == (0, 0, 0, 0)
    assert txt(s["equity_usd"]) == "10000.00000000"
    assert txt(s["net_pnl_usd"]) == txt(s["gross_loss_usd"]) == "0.00000000"
    assert (txt(s["max_drawdown_usd"]), s["max_drawdown_pct"]) == ("0.00000000", 0.0)
    for name in (
        "win_rate",
        "profit_factor",
        "expectancy_usd",
        "expectancy_ratio",
        "avg_win_usd",
        "avg_loss_usd",
        "best_trade_usd",
        "worst_trade_usd",
        "avg_duration_s",
        "max_drawdown_peak_at",
        "max_drawdown_trough_at",
        "sharpe",
        "sortino",
        "cagr",
        "calmar",
        "days",
        "first_trade_at",
        "last_trade_at",
    ):
        assert s[name] is None, name


def test_summary_of_one_winning_trade(bot: Bot) -> None:
    close(bot, at(0, 12), at(0, 13), "100")

    s = bot_summary(bot=bot)

    assert (s["trades_closed"], s["wins"], s["win_rate"]) == (1, 1, 1.0)
    assert (s["profit_factor"], s["expectancy_ratio"]) == (None, None)  # no losses
    assert txt(s["expectancy_usd"]) == "100.00000000"
    assert (s["sharpe"], s["sortino"]) == (None, None)  # one day
    assert s["days"] == 1.0  # one hour counts as one day
    assert s["cagr"] == pytest.approx(1.01**365 - 1, abs=1e-6)
    assert (s["max_drawdown_pct"], s["calmar"]) == (0.0, None)


def test_summary_of_only_wins_has_no_sortino(bot: Bot) -> None:
    trades = [(at(0, 1), at(0, 2), "100"), (at(1, 1), at(2, 2), "300")]
    for entry, exit_, pnl in trades:
        close(bot, entry, exit_, pnl)

    s = bot_summary(bot=bot)

    r = daily_returns(trades, 10000.0)
    np.testing.assert_allclose(r, [0.01, 0.0, 300 / 10100])
    assert s["sharpe"] == pytest.approx(numpy_sharpe(r), abs=1e-6)
    assert s["sortino"] is None  # no losing day: empyrical's would be inf
    assert (s["profit_factor"], s["expectancy_ratio"], s["win_rate"]) == (None, None, 1.0)


def test_summary_of_only_losses(bot: Bot) -> None:
    trades = [(at(0, 1), at(0, 2), "-100"), (at(1, 1), at(1, 2), "-300")]
    for entry, exit_, pnl in trades:
        close(bot, entry, exit_, pnl)

    s = bot_summary(bot=bot)

    assert (s["wins"], s["losses"], s["win_rate"]) == (0, 2, 0.0)
    assert (s["profit_factor"], s["expectancy_ratio"]) == (0.0, -1.0)
    assert (txt(s["avg_loss_usd"]), s["avg_win_usd"]) == ("200.00000000", None)
    assert txt(s["max_drawdown_usd"]) == "400.00000000"
    assert s["max_drawdown_pct"] == 4.0
    assert s["max_drawdown_peak_at"] == at(0, 1)  # the peak is the initial capital
    r = daily_returns(trades, 10000.0)
    assert s["sharpe"] == pytest.approx(numpy_sharpe(r), abs=1e-6)
    assert s["sortino"] == pytest.approx(numpy_sortino(r), abs=1e-6)
    cagr = numpy_cagr(10000, 9600, at(0, 1), at(1, 2))
    assert s["cagr"] == pytest.approx(cagr, abs=1e-6)
    assert s["calmar"] == pytest.approx(cagr / 0.04, abs=1e-6)


def test_a_breakeven_trade_is_neither_a_win_nor_a_loss(bot: Bot) -> None:
    close(bot, at(0, 1), at(0, 2), "0")

    s = bot_summary(bot=bot)

    assert (s["trades_closed"], s["wins"], s["losses"], s["breakeven"]) == (1, 0, 0, 1)
    assert (s["win_rate"], s["profit_factor"], s["expectancy_ratio"]) == (0.0, None, None)
    assert txt(s["expectancy_usd"]) == "0.00000000"
    assert s["cagr"] == 0.0


def test_trades_closing_on_the_same_second_are_ordered_by_id(bot: Bot) -> None:
    # The loss was stored first: the curve is 9,500 then 9,800 (peak: the initial capital).
    close(bot, at(0, 1), at(0, 2), "-500")
    close(bot, at(0, 1), at(0, 2), "300")

    s = bot_summary(bot=bot)
    curve = bot_equity_curve(bot=bot)

    assert [txt(p["equity_usd"]) for p in curve["points"]] == ["9500.00000000", "9800.00000000"]
    assert (txt(s["max_drawdown_usd"]), s["max_drawdown_pct"]) == ("500.00000000", 5.0)
    refresh_views()
    view = BotPerformanceSummary.objects.get(bot=bot)
    assert (view.max_drawdown_usd, view.max_drawdown_pct) == (Decimal("500"), Decimal("5"))


def test_a_bot_with_open_trades_only(bot: Bot) -> None:
    make_trade(bot, entry_time=at(0, 1))
    make_trade(bot, entry_time=at(0, 2))

    s = bot_summary(bot=bot)

    assert (s["trades_closed"], s["trades_open"], s["first_trade_at"]) == (0, 2, None)
    assert bot_equity_curve(bot=bot)["points"] == []
    assert bot_performance(bot=bot, period="day") == []


def test_backtests_are_left_out_unless_asked(mixed: Bot) -> None:
    close(mixed, at(2, 1), at(2, 2), "1000", source="backtest")

    assert txt(bot_summary(bot=mixed)["net_pnl_usd"]) == "200.00000000"
    with_backtest = bot_summary(bot=mixed, include_backtest=True)
    assert (with_backtest["trades_closed"], txt(with_backtest["net_pnl_usd"])) == (
        7,
        "1200.00000000",
    )
    assert with_backtest["include_backtest"] is True


def test_a_period_starts_from_the_equity_the_bot_had_then(mixed: Bot) -> None:
    # From the third trade on: 10,000 + 500 - 1,200 = 9,300 at the start.
    s = bot_summary(bot=mixed, since=at(1, 12), until=at(9, 0))

    assert (s["trades_closed"], txt(s["net_pnl_usd"]), txt(s["equity_usd"])) == (
        3,
        "1200.00000000",
        "10500.00000000",
    )
    assert (txt(s["max_drawdown_usd"]), s["max_drawdown_pct"]) == ("800.00000000", 8.602151)
    r = daily_returns([(e, x, p) for e, x, p, _, _ in MIXED[2:5]], 9300.0)
    assert s["sharpe"] == pytest.approx(numpy_sharpe(r), abs=1e-6)
    assert s["cagr"] == pytest.approx(numpy_cagr(9300, 10500, at(1, 12), at(4, 10)), abs=1e-6)


def test_reported_equity_is_the_last_balance_row(mixed: Bot) -> None:
    make_balance(mixed, ts=at(2, 0), equity_usd=Decimal("8400.5"))
    make_balance(mixed, ts=at(5, 0), equity_usd=Decimal("10480.25"))

    s = bot_summary(bot=mixed)
    bounded = bot_summary(bot=mixed, until=at(3, 0))

    assert (txt(s["reported_equity_usd"]), s["reported_equity_at"]) == ("10480.25000000", at(5, 0))
    assert txt(bounded["reported_equity_usd"]) == "8400.50000000"
    assert txt(s["equity_usd"]) == "10200.00000000"  # realized; reported is beside it


def test_the_summary_equals_the_materialized_view(mixed: Bot) -> None:
    close(mixed, at(2, 1), at(2, 2), "1000", source="backtest")  # left out by both
    refresh_views()

    s = bot_summary(bot=mixed)
    view = BotPerformanceSummary.objects.get(bot=mixed)

    def six(value: Decimal | None) -> float | None:
        return None if value is None else round(float(value), 6)

    assert (s["trades_closed"], s["wins"], s["losses"], s["breakeven"]) == (
        view.trades_closed,
        view.wins,
        view.losses,
        view.breakeven,
    )
    for name in ("gross_profit_usd", "gross_loss_usd", "net_pnl_usd", "fees_usd", "volume_usd"):
        assert s[name] == getattr(view, name), name
    for name in ("best_trade_usd", "worst_trade_usd", "max_drawdown_usd"):
        assert s[name] == getattr(view, name), name
    for name in ("expectancy_usd", "avg_win_usd", "avg_loss_usd"):
        assert s[name] == getattr(view, name).quantize(Decimal("0.00000001")), name
    for name in ("win_rate", "profit_factor", "avg_duration_s", "max_drawdown_pct"):
        assert s[name] == six(getattr(view, name)), name
    assert (s["first_trade_at"], s["last_trade_at"]) == (view.first_trade_at, view.last_trade_at)


# --- The cache of summaries, keyed by the version of the bot's trades -------------------------


def test_a_cached_summary_is_served_until_the_trades_change(
    mixed: Bot, django_assert_num_queries: Any
) -> None:
    computed = bot_summary(bot=mixed)

    with django_assert_num_queries(1):  # the version and the reported equity only
        cached = bot_summary(bot=mixed)
    assert cached == computed

    close(mixed, at(10, 1), at(10, 2), "-100")  # a new trade: a new version
    # It closed before the checkpoint's cut (the start of today): the checkpoint is rebuilt.
    with django_assert_num_queries(3):
        after = bot_summary(bot=mixed)
    assert (after["trades_closed"], txt(after["net_pnl_usd"])) == (7, "100.00000000")

    Trade.objects.filter(bot=mixed, pnl_usd=Decimal("-100")).update(pnl_usd=Decimal("-50"))
    assert txt(bot_summary(bot=mixed)["net_pnl_usd"]) == "150.00000000"

    Trade.objects.filter(bot=mixed, pnl_usd=Decimal("-50")).delete()
    assert bot_summary(bot=mixed) == computed


def test_a_cached_summary_shows_the_latest_reported_equity(mixed: Bot) -> None:
    bot_summary(bot=mixed)
    make_balance(mixed, ts=at(12, 0), equity_usd=Decimal("10111"))

    s = bot_summary(bot=mixed)

    assert (txt(s["reported_equity_usd"]), s["reported_equity_at"]) == ("10111.00000000", at(12, 0))


def test_each_scope_is_cached_apart(mixed: Bot) -> None:
    whole = bot_summary(bot=mixed)
    period = bot_summary(bot=mixed, since=at(1, 12))

    assert bot_summary(bot=mixed) == whole
    assert bot_summary(bot=mixed, since=at(1, 12)) == period != whole


def test_ingest_bumps_the_version_only_when_a_trade_changes(bot: Bot) -> None:
    row = {
        "trade_id": "x-1",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "side": "long",
        "quantity": Decimal("1"),
        "entry_price": Decimal("100"),
        "exit_price": None,
        "entry_time": at(0, 1),
        "exit_time": None,
        "fees_usd": Decimal("0"),
        "pnl_usd": None,
        "status": "open",
        "source": "live",
        "leverage": Decimal("1"),
        "exit_reason": "",
        "entry_tag": "",
        "strategy_data": {},
    }

    def version() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT version FROM analytics.bot_trade_versions WHERE bot_id = %s", [bot.bot_id]
            )
            found = cursor.fetchone()
        return found[0] if found else None

    before = version()
    trade_upsert_many(bot=bot, rows=[trade_derived_fields(dict(row))])
    assert version() == (before or 0) + 1
    trade_upsert_many(bot=bot, rows=[trade_derived_fields(dict(row))])  # the same: unchanged
    assert version() == (before or 0) + 1
    closed = {**row, "status": "closed", "exit_price": Decimal("110"), "exit_time": at(0, 2)}
    trade_upsert_many(bot=bot, rows=[trade_derived_fields(closed)])
    assert version() == (before or 0) + 2
    assert txt(bot_summary(bot=bot)["net_pnl_usd"]) == "10.00000000"


def test_without_redis_the_summary_is_computed(mixed: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = bot_summary(bot=mixed)

    class Down:
        def get(self, *args: Any) -> Any:
            raise ConnectionError("Redis is down")

        set = get

    monkeypatch.setattr("analytics.selectors.bots.caches", {"default": Down()})

    assert bot_summary(bot=mixed) == expected


# --- The equity curve ---------------------------------------------------------------------------


def test_equity_curve_one_point_per_closed_trade(
    mixed: Bot, django_assert_num_queries: Any
) -> None:
    make_balance(mixed, ts=at(5, 0), equity_usd=Decimal("10480.25"))
    make_balance(mixed, ts=at(2, 0), equity_usd=Decimal("8400.5"))

    with django_assert_num_queries(2):
        curve = bot_equity_curve(bot=mixed)

    assert [
        (
            p["ts"],
            txt(p["equity_usd"]),
            txt(p["peak_usd"]),
            txt(p["drawdown_usd"]),
            p["drawdown_pct"],
        )
        for p in curve["points"]
    ] == [
        (at(0, 13), "10500.00000000", "10500.00000000", "0.00000000", 0.0),
        (at(1, 11), "9300.00000000", "10500.00000000", "1200.00000000", 11.428571),
        (at(1, 14), "8500.00000000", "10500.00000000", "2000.00000000", 19.047619),
        (at(3, 10), "8500.00000000", "10500.00000000", "2000.00000000", 19.047619),
        (at(4, 10), "10500.00000000", "10500.00000000", "0.00000000", 0.0),
        (at(9, 10), "10200.00000000", "10500.00000000", "300.00000000", 2.857143),
    ]
    assert [(r["ts"], txt(r["equity_usd"])) for r in curve["reported"]] == [
        (at(2, 0), "8400.50000000"),
        (at(5, 0), "10480.25000000"),
    ]


# --- Periods and breakdowns -------------------------------------------------------------------


def perf(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            txt(r["period_start"]),
            r["trades"],
            r["wins"],
            r["losses"],
            txt(r["net_pnl_usd"]),
            txt(r["fees_usd"]),
            txt(r["starting_equity_usd"]),
            r["return_pct"],
        )
        for r in rows
    ]


def test_performance_per_day(mixed: Bot, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        rows = bot_performance(bot=mixed, period="day")

    assert perf(rows) == [
        ("2026-01-05", 1, 1, 0, "500.00000000", "5.00000000", "10000.00000000", 5.0),
        ("2026-01-06", 2, 0, 2, "-2000.00000000", "10.00000000", "10500.00000000", -19.047619),
        ("2026-01-08", 1, 0, 0, "0.00000000", "5.00000000", "8500.00000000", 0.0),
        ("2026-01-09", 1, 1, 0, "2000.00000000", "5.00000000", "8500.00000000", 23.529412),
        ("2026-01-14", 1, 0, 1, "-300.00000000", "5.00000000", "10500.00000000", -2.857143),
    ]


def test_performance_per_iso_week_and_month(mixed: Bot) -> None:
    # 2026-01-05 and 2026-01-12 are Mondays; the last trade closes on Wednesday the 14th.
    assert perf(bot_performance(bot=mixed, period="week")) == [
        ("2026-01-05", 5, 2, 2, "500.00000000", "25.00000000", "10000.00000000", 5.0),
        ("2026-01-12", 1, 0, 1, "-300.00000000", "5.00000000", "10500.00000000", -2.857143),
    ]
    assert perf(bot_performance(bot=mixed, period="month")) == [
        ("2026-01-01", 6, 2, 3, "200.00000000", "30.00000000", "10000.00000000", 2.0),
    ]


def test_performance_per_day_equals_the_daily_view(mixed: Bot) -> None:
    refresh_views()

    rows = bot_performance(bot=mixed, period="day")

    view = BotDailyPerformance.objects.filter(bot=mixed).order_by("day")
    assert [(r["period_start"], r["trades"], r["wins"], r["losses"]) for r in rows] == [
        (v.day, v.trades, v.wins, v.losses) for v in view
    ]
    assert [(r["net_pnl_usd"], r["fees_usd"]) for r in rows] == [
        (v.net_pnl_usd, v.fees_usd) for v in view
    ]


def test_breakdown_by_exit_reason_and_entry_tag(mixed: Bot, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        by_reason = bot_breakdown(bot=mixed, by="exit_reason")
    by_tag = bot_breakdown(bot=mixed, by="entry_tag")

    def rows(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                r["key"],
                r["trades"],
                r["wins"],
                r["losses"],
                r["win_rate"],
                txt(r["net_pnl_usd"]),
                txt(r["avg_pnl_usd"]),
                r["avg_duration_s"],
            )
            for r in found
        ]

    assert rows(by_reason) == [
        ("roi", 2, 2, 0, 1.0, "2500.00000000", "1250.00000000", 45000.0),
        ("exit_signal", 1, 0, 0, 0.0, "0.00000000", "0.00000000", 3600.0),
        ("trailing_stop", 1, 0, 1, 0.0, "-300.00000000", "-300.00000000", 86400.0),
        ("stop_loss", 2, 0, 2, 0.0, "-2000.00000000", "-1000.00000000", 5400.0),
    ]
    assert rows(by_tag) == [
        ("pullback", 2, 1, 1, 0.5, "1200.00000000", "600.00000000", 46800.0),
        ("", 1, 0, 0, 0.0, "0.00000000", "0.00000000", 3600.0),
        ("breakout", 3, 1, 2, 0.333333, "-1000.00000000", "-333.33333333", 31200.0),
    ]


def test_unknown_period_or_breakdown_is_refused(bot: Bot) -> None:
    with pytest.raises(ValueError, match="period"):
        bot_performance(bot=bot, period="year")
    with pytest.raises(ValueError, match="by"):
        bot_breakdown(bot=bot, by="symbol")


def test_ratios_are_finite_numbers_rounded_to_six_places(mixed: Bot) -> None:
    s = bot_summary(bot=mixed)

    for name, value in s.items():
        if isinstance(value, float):
            assert math.isfinite(value) and round(value, 6) == value, name
