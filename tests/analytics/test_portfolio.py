"""The portfolio summary (analytics.selectors.portfolio_summary) on three hand-made bots, and its
one-day VaR against numpy on a daily series built here from the trades."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pytest
from django.db import connection

from analytics.models import PortfolioSnapshot
from analytics.selectors import portfolio_snapshot_list, portfolio_summary
from analytics.sql import MATERIALIZED_VIEWS
from tests.factories import make_balance, make_bot, make_closed_trade, make_position
from trading.models import Bot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = datetime(2026, 3, 1, tzinfo=UTC)


def txt(value: Any) -> str:
    return f"{value:f}" if isinstance(value, Decimal) else str(value)


def refresh_views() -> None:
    with connection.cursor() as cursor:
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")


def close(bot: Bot, exit_: datetime, pnl: str, **fields: Any) -> None:
    make_closed_trade(
        bot, pnl_usd=Decimal(pnl), entry_time=exit_ - timedelta(hours=1), exit_time=exit_, **fields
    )


@pytest.fixture
def views_emptied(db: None) -> None:
    """The views hold nothing: a transactional test elsewhere may have left rows in them (a
    flush empties the tables, not the materialized views)."""
    refresh_views()


@pytest.fixture
def fleet(views_emptied: None) -> list[Bot]:
    """alpha reported a balance; beta's heartbeat sent its equity; gamma never reported one."""
    alpha = make_bot("alpha", name="Alpha", last_heartbeat_at=NOW - timedelta(seconds=30))
    beta = make_bot("beta", name="Beta", initial_capital_usd=Decimal("20000"))
    beta.current_equity_usd = Decimal("20000.5")
    beta.save(update_fields=["current_equity_usd"])
    gamma = make_bot("gamma", name="Gamma", status="paused", initial_capital_usd=Decimal("5000"))
    make_balance(alpha, ts=NOW - timedelta(days=2), equity_usd=Decimal("9000"))
    make_balance(
        alpha,
        ts=NOW - timedelta(hours=1),
        equity_usd=Decimal("10500"),
        balance_usd=Decimal("10400"),
    )
    # Exposure: a long with a current price, a short priced at its entry, a closed position.
    make_position(
        alpha,
        quantity=Decimal("1"),
        avg_entry_price=Decimal("100"),
        current_price=Decimal("110"),
        unrealized_pnl_usd=Decimal("10"),
    )
    make_position(
        beta,
        side="short",
        quantity=Decimal("2"),
        initial_quantity=Decimal("2"),
        avg_entry_price=Decimal("50"),
        unrealized_pnl_usd=Decimal("-1.5"),
    )
    make_position(gamma, status="closed", closed_at=NOW, quantity=Decimal("0"))
    close(alpha, NOW - timedelta(hours=2), "50")
    close(alpha, NOW - timedelta(days=3), "-20")
    close(gamma, NOW - timedelta(days=10), "100")
    close(gamma, NOW - timedelta(hours=3), "25")
    close(gamma, NOW - timedelta(hours=4), "999", source="backtest")
    return [alpha, beta, gamma]


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: txt(v) for k, v in summary.items() if k not in ("bots", "as_of")}


@pytest.mark.parametrize("refreshed", [False, True], ids=["view-empty", "view-refreshed"])
def test_portfolio_of_three_bots(
    fleet: list[Bot], refreshed: bool, django_assert_num_queries: Any
) -> None:
    if refreshed:
        refresh_views()

    with django_assert_num_queries(2):
        summary = portfolio_summary(now=NOW)

    assert figures(summary) == {
        # 10,500 reported + 20,000.5 from the heartbeat + 5,000 + 100 + 25 realized
        "total_equity_usd": "35625.50000000",
        "total_balance_usd": "35525.50000000",  # alpha's balance 10,400; the others' equity
        "unrealized_pnl_usd": "8.50000000",
        "realized_pnl_today_usd": "75.00000000",
        "long_exposure_usd": "110.00000000",  # 1 x 110 (current price)
        "short_exposure_usd": "100.00000000",  # 2 x 50 (no price known: entry price)
        "gross_exposure_usd": "210.00000000",
        "net_exposure_usd": "10.00000000",
        "open_positions": "2",
        "active_bots": "2",
        "var_95_usd": "None",  # 10 days (Feb 19, the first entry, to Feb 28): fewer than 20
        "var_99_usd": "None",
        "var_days": "10",
    }
    assert [
        (
            b["bot_id"],
            b["status"],
            txt(b["equity_usd"]),
            b["equity_source"],
            txt(b["pnl_today_usd"]),
            b["open_positions"],
            txt(b["exposure_usd"]),
            b["heartbeat_age_s"],
        )
        for b in summary["bots"]
    ] == [
        ("alpha", "active", "10500.00000000", "reported", "50.00000000", 1, "110.00000000", 30.0),
        ("beta", "active", "20000.50000000", "reported", "0.00000000", 1, "100.00000000", None),
        ("gamma", "paused", "5125.00000000", "realized", "25.00000000", 0, "0.00000000", None),
    ]
    assert summary["as_of"] == NOW


def test_portfolio_of_no_bots(views_emptied: None) -> None:
    summary = portfolio_summary(now=NOW)

    assert (summary["bots"], summary["var_days"], summary["var_95_usd"]) == ([], 0, None)
    assert txt(summary["total_equity_usd"]) == "0.00000000"


# --- VaR -----------------------------------------------------------------------------------------


def daily_pnl_fixture() -> list[tuple[datetime, str]]:
    """40 days of one closed trade a day, losses of varied size on some, plus noise days."""
    pnl = []
    for n in range(1, 41):
        value = [120, -340, 55, -80, 210, -510, 0, 95, -20, 300][n % 10] + n
        pnl.append((TODAY - timedelta(days=n) + timedelta(hours=15), str(value)))
    return pnl


def numpy_var(trades: list[tuple[datetime, str]], capital: float, window_from: datetime) -> Any:
    first_day = min(exit_ - timedelta(hours=1) for exit_, _ in trades).date()
    start = max(window_from.date(), first_day)
    days = [start + timedelta(days=n) for n in range((TODAY.date() - start).days)]
    equity = capital + sum(float(p) for exit_, p in trades if exit_.date() < start)
    returns = []
    for day in days:
        pnl = sum(float(p) for exit_, p in trades if exit_.date() == day)
        returns.append(pnl / equity)
        equity += pnl
    r = np.array(returns)
    return len(r), np.quantile(r, 0.05), np.quantile(r, 0.01)


def usd(value: float) -> str:
    return txt(Decimal(repr(float(value))).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("refreshed", [False, True], ids=["view-empty", "view-refreshed"])
def test_var_is_historical_over_the_trailing_days(views_emptied: None, refreshed: bool) -> None:
    bot = make_bot("var_bot", initial_capital_usd=Decimal("10000"))
    trades = daily_pnl_fixture()
    for exit_, pnl in trades:
        close(bot, exit_, pnl)
    make_balance(bot, ts=NOW - timedelta(minutes=5), equity_usd=Decimal("12345.67"))
    if refreshed:
        refresh_views()

    summary = portfolio_summary(now=NOW)

    days, q95, q99 = numpy_var(trades, 10000.0, TODAY - timedelta(days=90))
    assert days == 40 and q95 < 0 and q99 < 0
    assert summary["var_days"] == 40
    assert txt(summary["var_95_usd"]) == usd(-q95 * 12345.67)
    assert txt(summary["var_99_usd"]) == usd(-q99 * 12345.67)


def test_var_window_is_ninety_days_and_zero_without_losses(db: None) -> None:
    bot = make_bot("winner", initial_capital_usd=Decimal("1000"))
    for n in range(1, 121):  # 120 days of gains
        close(bot, TODAY - timedelta(days=n, hours=-10), "1")
    refresh_views()
    # After the refresh: the view's last day and today are read live.
    close(bot, TODAY - timedelta(days=1, hours=-11), "2")
    close(bot, TODAY + timedelta(hours=1), "3")

    summary = portfolio_summary(now=NOW)

    assert summary["var_days"] == 90
    assert (txt(summary["var_95_usd"]), txt(summary["var_99_usd"])) == ("0", "0")
    assert txt(summary["total_equity_usd"]) == "1125.00000000"  # realized: 1000 + 120 + 2 + 3


def test_var_leaves_out_the_losses_before_its_ninety_days(db: None) -> None:
    bot = make_bot("old_losses", initial_capital_usd=Decimal("10000"))
    # Losing days 91 to 120 days ago, winning days since.
    trades = [
        (TODAY - timedelta(days=n, hours=-10), "-50" if n > 90 else "5") for n in range(1, 121)
    ]
    for exit_, pnl in trades:
        close(bot, exit_, pnl)
    make_balance(bot, ts=NOW - timedelta(minutes=5), equity_usd=Decimal("10000"))

    before = portfolio_summary(now=NOW)
    # One loss on the window's first day (90 days ago) is the only one VaR can see.
    inside = (TODAY - timedelta(days=90, hours=-11), "-400")
    close(bot, *inside)
    after = portfolio_summary(now=NOW)

    assert before["var_days"] == after["var_days"] == 90
    assert (txt(before["var_95_usd"]), txt(before["var_99_usd"])) == ("0", "0")
    days, q95, q99 = numpy_var([*trades, inside], 10000.0, TODAY - timedelta(days=90))
    assert days == 90 and q95 > 0 and q99 < 0  # 1 losing day in 90: beyond the 95% quantile
    assert txt(after["var_95_usd"]) == "0"
    assert txt(after["var_99_usd"]) == usd(-q99 * 10000.0)


def test_snapshot_list_newest_first_in_range(db: None, django_assert_num_queries: Any) -> None:
    for hours in (1, 2, 3):
        PortfolioSnapshot.objects.create(
            ts=NOW - timedelta(hours=hours), total_equity_usd=Decimal(hours), total_balance_usd=0
        )

    with django_assert_num_queries(1):
        rows = list(portfolio_snapshot_list(since=NOW - timedelta(hours=2, minutes=30), until=NOW))

    assert [r.ts for r in rows] == [NOW - timedelta(hours=1), NOW - timedelta(hours=2)]
