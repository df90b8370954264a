"""The materialized views (analytics/sql.py): their rows pinned on hand-computed trades, equal to
the SQL they replaced (migration 0004) down to the scale of every number, and refreshed by
views_refresh to what their own SQL gives when run afresh."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from analytics.models import BotDailyPerformance, BotPerformanceSummary
from analytics.services import views_refresh
from analytics.sql import DAILY_PERFORMANCE_VIEW, PERFORMANCE_SUMMARY_VIEW
from tests.factories import make_bot, make_closed_trade, make_trade
from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db

D0 = datetime(2026, 1, 5, tzinfo=UTC)

# The columns bot_daily_performance had before migration 0004.
DAILY_COLUMNS = (
    "bot_id, day, trades, wins, losses, breakeven, gross_profit_usd, gross_loss_usd, "
    "net_pnl_usd, fees_usd, volume_usd"
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return D0 + timedelta(days=day, hours=hour, minutes=minute)


def close(bot: Bot, entry: datetime, exit_: datetime, pnl: str, **fields: Any) -> Trade:
    """A closed trade of 0.5 at 60,000 (volume 30,000) with 5 of fees."""
    return make_closed_trade(
        bot,
        pnl_usd=Decimal(pnl),
        entry_time=entry,
        exit_time=exit_,
        fees_usd=Decimal("5"),
        **fields,
    )


def as_text(source: str, order_by: str, row: str = "q") -> list[str]:
    """The rows of a view or a (query) as PostgreSQL writes them: 0.50000000 and 0.5 are equal
    numbers but not the same result."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ({row})::text FROM {source} q ORDER BY {order_by}")  # noqa: S608
        return [found[0] for found in cursor.fetchall()]


@pytest.fixture
def fleet(db: None) -> list[Bot]:
    """alpha: a win, a loss and a win closing on the same second (the loss stored first), a
    breakeven, a backtest and an open trade (both left out), a loss held over midnight, a win.
    Its curve: 10,500 (the peak), 9,700, 10,000, 10,000, 8,800 (the trough: 1,700 down), 10,800.
    beta: two wins, never a drawdown. gamma: an open trade only."""
    alpha = make_bot("alpha")
    beta = make_bot("beta", initial_capital_usd=Decimal("5000"))
    gamma = make_bot("gamma", initial_capital_usd=Decimal("5000"))
    close(alpha, at(0, 9), at(0, 10), "500")
    close(alpha, at(0, 10), at(0, 12), "-800")
    close(alpha, at(0, 11), at(0, 12), "300")
    close(alpha, at(0, 12, 30), at(0, 13), "0")
    close(alpha, at(0, 13), at(0, 14), "-5000", source="backtest")
    make_trade(alpha, entry_time=at(0, 15))
    close(alpha, at(0, 23), at(1, 9), "-1200")
    close(alpha, at(1, 10), at(1, 11, 30), "2000")
    close(beta, at(0, 8), at(0, 9), "100")
    close(beta, at(2, 8), at(2, 8, 30), "50")
    make_trade(gamma, entry_time=at(0, 8))
    return [alpha, beta, gamma]


def test_the_daily_view_on_hand_computed_trades(fleet: list[Bot]) -> None:
    views_refresh()

    found = [
        (
            d.bot_id,
            d.day.isoformat(),
            (d.trades, d.wins, d.losses, d.breakeven),
            (d.gross_profit_usd, d.gross_loss_usd, d.net_pnl_usd, d.fees_usd, d.volume_usd),
            (d.best_trade_usd, d.worst_trade_usd, d.duration_s),
        )
        for d in BotDailyPerformance.objects.order_by("bot_id", "day")
    ]

    D = Decimal
    assert found == [
        (
            "alpha",
            "2026-01-05",
            (4, 2, 1, 1),
            (D("800"), D("800"), D("0"), D("20"), D("120000")),
            (D("500"), D("-800"), D("16200")),
        ),
        (
            "alpha",
            "2026-01-06",  # the loss entered on the 5th is counted on the day it closed
            (2, 1, 1, 0),
            (D("2000"), D("1200"), D("800"), D("10"), D("60000")),
            (D("2000"), D("-1200"), D("41400")),
        ),
        (
            "beta",
            "2026-01-05",
            (1, 1, 0, 0),
            (D("100"), D("0"), D("100"), D("5"), D("30000")),
            (D("100"), D("100"), D("3600")),
        ),
        (
            "beta",
            "2026-01-07",
            (1, 1, 0, 0),
            (D("50"), D("0"), D("50"), D("5"), D("30000")),
            (D("50"), D("50"), D("1800")),
        ),
    ]


def test_the_summary_view_on_hand_computed_trades(fleet: list[Bot]) -> None:
    views_refresh()

    found = {s.bot_id: s for s in BotPerformanceSummary.objects.all()}

    D = Decimal
    alpha, beta, gamma = found["alpha"], found["beta"], found["gamma"]
    assert (alpha.trades_closed, alpha.wins, alpha.losses, alpha.breakeven) == (6, 3, 2, 1)
    assert (alpha.win_rate, alpha.profit_factor) == (D("0.5"), D("1.4"))
    assert (alpha.gross_profit_usd, alpha.gross_loss_usd, alpha.net_pnl_usd) == (
        D("2800"),
        D("2000"),
        D("800"),
    )
    assert (alpha.expectancy_usd, alpha.avg_win_usd, alpha.avg_loss_usd) == (
        D("133.3333333333333333"),
        D("933.3333333333333333"),
        D("1000"),
    )
    assert (alpha.best_trade_usd, alpha.worst_trade_usd, alpha.avg_duration_s) == (
        D("2000"),
        D("-1200"),
        D("9600"),
    )
    assert (alpha.fees_usd, alpha.volume_usd) == (D("30"), D("180000"))
    # From the peak of 10,500 down to 8,800; had the win on the same second come first, the
    # peak would have been 10,800 and the fall 2,000.
    assert (alpha.max_drawdown_usd, alpha.max_drawdown_pct) == (
        D("1700"),
        D("16.190476190476190476"),
    )
    assert (alpha.first_trade_at, alpha.last_trade_at) == (at(0, 9), at(1, 11, 30))

    assert (beta.trades_closed, beta.wins, beta.losses, beta.win_rate) == (2, 2, 0, D("1"))
    assert (beta.gross_loss_usd, beta.profit_factor, beta.avg_loss_usd) == (D("0"), None, None)
    assert (beta.expectancy_usd, beta.avg_win_usd, beta.avg_duration_s) == (
        D("75"),
        D("75"),
        D("2700"),
    )
    assert (beta.max_drawdown_usd, beta.max_drawdown_pct) == (D("0"), D("0"))
    assert (beta.first_trade_at, beta.last_trade_at) == (at(0, 8), at(2, 8, 30))

    assert (gamma.trades_closed, gamma.net_pnl_usd, gamma.max_drawdown_pct) == (0, D("0"), D("0"))
    assert (gamma.win_rate, gamma.avg_duration_s, gamma.first_trade_at) == (None, None, None)


# --- The same numbers as the SQL migration 0004 replaced -----------------------------------------


@pytest.fixture
def edge_cases(fleet: list[Bot]) -> None:
    """delta's equity goes below zero. epsilon falls 5% twice, from two peaks. zeta's first trade
    is breakeven, then a new peak: its zero drawdown has the scale of its last point."""
    delta = make_bot("delta", initial_capital_usd=Decimal("1000"))
    close(delta, at(0, 1), at(0, 2), "-1500")
    close(delta, at(0, 3), at(0, 4), "200")
    close(delta, at(0, 5), at(0, 6), "-300.12345678")
    epsilon = make_bot("epsilon")
    close(epsilon, at(0, 1), at(0, 2), "-500")
    close(epsilon, at(0, 3), at(0, 4), "2000")
    close(epsilon, at(1, 3), at(1, 4), "-575")
    zeta = make_bot("zeta", initial_capital_usd=Decimal("9999"))
    close(zeta, at(0, 1), at(0, 2), "0")
    close(zeta, at(0, 3), at(0, 4), "1")


def previous_query(name: str) -> str:
    """The SELECT of a view as migration 0002 created it (its SQL is frozen there)."""
    migration = importlib.import_module("analytics.migrations.0002_materialized_views")
    create: str = getattr(migration, name)
    return create.split(" AS\n", 1)[1].split(";", 1)[0]


def test_the_views_equal_the_sql_they_replace_to_the_last_digit(edge_cases: None) -> None:
    views_refresh()

    previous_daily = f"({previous_query('CREATE_DAILY_PERFORMANCE')})"
    previous_summary = f"({previous_query('CREATE_PERFORMANCE_SUMMARY')})"
    assert as_text(DAILY_PERFORMANCE_VIEW, "bot_id, day", row=DAILY_COLUMNS) == as_text(
        previous_daily, "bot_id, day"
    )
    summary = as_text(PERFORMANCE_SUMMARY_VIEW, "bot_id")
    assert summary == as_text(previous_summary, "bot_id")
    assert len(summary) == 6


# --- views_refresh --------------------------------------------------------------------------------


def afresh(view: str) -> str:
    """The view's own query, to run now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_viewdef(%s::regclass)", [view])
        (definition,) = cursor.fetchone() or ("",)
    return f"({definition.strip().rstrip(';')})"


def test_views_refresh_leaves_the_views_equal_to_their_sql_run_afresh(fleet: list[Bot]) -> None:
    alpha, beta, _ = fleet
    views_refresh()
    close(beta, at(3, 1), at(3, 2), "-70")  # a new day
    Trade.objects.filter(bot=alpha, pnl_usd=Decimal("-1200")).update(pnl_usd=Decimal("-2500"))
    Trade.objects.filter(bot=alpha, pnl_usd=Decimal("0")).delete()

    views_refresh()

    daily = as_text(DAILY_PERFORMANCE_VIEW, "bot_id, day")
    summary = as_text(PERFORMANCE_SUMMARY_VIEW, "bot_id")
    assert daily == as_text(afresh(DAILY_PERFORMANCE_VIEW), "bot_id, day")
    assert summary == as_text(afresh(PERFORMANCE_SUMMARY_VIEW), "bot_id")
    assert len(daily) == 5
    s = BotPerformanceSummary.objects.get(bot=alpha)
    assert (s.trades_closed, s.breakeven, s.max_drawdown_usd) == (5, 0, Decimal("3000"))
