"""The portfolio summary's two statements, rewritten so that PostgreSQL before 18 plans them well
(per-bot index ranges instead of whole-table scans; no estimate that makes it JIT-compile for
seconds), answer what they answered before, row for row and digit for digit: the statements as
they were are kept here and both are run on one fleet, with the daily view empty, fresh,
stale and old (and the fleet's daily pnl, which the VaR now reads, older than the daily view),
and "now" before, inside and after the trades."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from analytics.selectors.common import fetch_all, fetch_one
from analytics.selectors.portfolio import _BOTS_SQL, _CUT, _VAR_SQL, VAR_WINDOW_DAYS
from analytics.sql import DAILY_PERFORMANCE_VIEW
from tests.analytics.test_portfolio import refresh_views
from tests.factories import make_balance, make_bot, make_closed_trade, make_trade
from trading.models import Bot

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 3, 1, tzinfo=UTC)

# The statements as they were before the rewrite (analytics/selectors/portfolio.py).
BOTS_SQL_BEFORE = f"""
WITH {_CUT}, pos AS (
    SELECT p.bot_id, count(*)::int AS open_positions,
           COALESCE(sum(p.quantity * COALESCE(p.current_price, p.avg_entry_price))
                    FILTER (WHERE p.side = 'long'), 0)  AS long_exposure_usd,
           COALESCE(sum(p.quantity * COALESCE(p.current_price, p.avg_entry_price))
                    FILTER (WHERE p.side = 'short'), 0) AS short_exposure_usd,
           COALESCE(sum(p.unrealized_pnl_usd), 0)       AS unrealized_pnl_usd
    FROM trading.positions p
    WHERE p.status <> 'closed'
    GROUP BY p.bot_id
)
SELECT b.bot_id, b.name, b.status, b.mode, b.initial_capital_usd, b.current_equity_usd,
       b.last_heartbeat_at,
       bal.equity_usd AS balance_equity_usd, bal.balance_usd,
       COALESCE(today.pnl, 0) AS pnl_today_usd,
       COALESCE(pos.open_positions, 0) AS open_positions,
       COALESCE(pos.long_exposure_usd, 0) AS long_exposure_usd,
       COALESCE(pos.short_exposure_usd, 0) AS short_exposure_usd,
       COALESCE(pos.unrealized_pnl_usd, 0) AS unrealized_pnl_usd,
       -- Realized equity only for a bot that never reported one.
       CASE WHEN bal.equity_usd IS NULL AND b.current_equity_usd IS NULL THEN
           (SELECT COALESCE(sum(d.net_pnl_usd), 0) FROM analytics.bot_daily_performance d
            WHERE d.bot_id = b.bot_id AND d.day < cut.day)
         + (SELECT COALESCE(sum(t.pnl_usd), 0) FROM trading.trades t
            WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
              AND t.exit_time >= cut.at)
       END AS realized_pnl_usd
FROM trading.bots b
CROSS JOIN cut
LEFT JOIN pos ON pos.bot_id = b.bot_id
LEFT JOIN LATERAL (
    SELECT ab.equity_usd, ab.balance_usd FROM trading.account_balance ab
    WHERE ab.bot_id = b.bot_id
    ORDER BY ab.ts DESC, ab.id DESC
    LIMIT 1
) bal ON true
LEFT JOIN LATERAL (
    SELECT sum(t.pnl_usd) AS pnl FROM trading.trades t
    WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
      AND t.exit_time >= %(today)s AND t.exit_time < %(tomorrow)s
) today ON true
ORDER BY b.bot_id
"""  # noqa: S608 - constant text

VAR_SQL_BEFORE = f"""
WITH {_CUT}, first AS (
    SELECT (min(t.entry_time) AT TIME ZONE 'UTC')::date AS day FROM trading.trades t
    WHERE t.status = 'closed' AND t.source <> 'backtest'
), bounds AS (
    SELECT CASE WHEN first.day IS NOT NULL
                THEN GREATEST(%(window_start)s::date, first.day) END AS day
    FROM first
), daily AS (
    SELECT d.day, sum(d.net_pnl_usd) AS pnl
    FROM analytics.bot_daily_performance d, cut, bounds
    WHERE d.day >= bounds.day AND d.day < cut.day
    GROUP BY d.day
    UNION ALL
    SELECT (t.exit_time AT TIME ZONE 'UTC')::date, sum(t.pnl_usd)
    FROM trading.trades t, cut, bounds
    WHERE t.status = 'closed' AND t.source <> 'backtest'
      AND t.exit_time >= GREATEST(cut.at, bounds.day::timestamp AT TIME ZONE 'UTC')
      AND t.exit_time < %(today)s
    GROUP BY 1
), base AS MATERIALIZED (
    SELECT (SELECT sum(b.initial_capital_usd) FROM trading.bots b)
         + (SELECT COALESCE(sum(d.net_pnl_usd), 0) FROM analytics.bot_daily_performance d, cut
            WHERE d.day < LEAST(cut.day, bounds.day))
         + (SELECT COALESCE(sum(t.pnl_usd), 0) FROM trading.trades t, cut
            WHERE t.status = 'closed' AND t.source <> 'backtest'
              AND t.exit_time >= cut.at
              AND t.exit_time < bounds.day::timestamp AT TIME ZONE 'UTC') AS equity
    FROM bounds
), series AS (
    SELECT g.day::date AS day, COALESCE(sum(daily.pnl), 0) AS pnl
    FROM bounds
    CROSS JOIN LATERAL generate_series(bounds.day, %(yesterday)s::date, interval '1 day') g(day)
    LEFT JOIN daily ON daily.day = g.day::date
    GROUP BY g.day
), returns AS (
    SELECT (series.pnl / NULLIF(base.equity + COALESCE(sum(series.pnl) OVER (
               ORDER BY series.day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)
           )::float8 AS r
    FROM series CROSS JOIN base
)
SELECT count(r)::int AS days,
       percentile_cont(0.05) WITHIN GROUP (ORDER BY r) AS q95,
       percentile_cont(0.01) WITHIN GROUP (ORDER BY r) AS q99
FROM returns
"""  # noqa: S608 - constant text


def close(bot: Bot, exit_: datetime, pnl: str, **fields: Any) -> Decimal:
    make_closed_trade(
        bot, pnl_usd=Decimal(pnl), entry_time=exit_ - timedelta(hours=5), exit_time=exit_, **fields
    )
    return Decimal(0) if fields.get("source") == "backtest" else Decimal(pnl)


def trades(bot: Bot, days: Iterable[int], seed: int) -> Decimal:
    """A trade or two a day over ``days`` before TODAY (one exactly at a midnight), a backtest
    now and then; their pnl (backtests left out)."""
    total = Decimal(0)
    for n in days:
        pnl = f"{(n * 37 + seed * 11) % 200 - 90}.{(n * seed) % 100:02d}"
        total += close(bot, TODAY - timedelta(days=n, hours=-(n % 24)), pnl)
        if n % 7 == seed % 7:
            total += close(bot, TODAY - timedelta(days=n), f"-{n % 50}.5")
        if n % 11 == 0:
            total += close(bot, TODAY - timedelta(days=n, hours=-3), "500", source="backtest")
    return total


def fleet(view: str) -> dict[str, Bot]:
    """alpha reported a balance, beta's heartbeat an equity; gamma and delta never reported one
    (their equity is realized: the sums this rewrite split); epsilon has no trades. The view
    refreshed (fresh, stale: then later trades) or, "old", refreshed when the trades were those
    of 100 days ago and more: its last day is before the VaR window, whose start equity then
    reads trades live. "split": every view refreshed as "old", then the daily view alone again
    after every trade (as by hand): the fleet's daily pnl, which the VaR reads, is "old" while
    the daily view the statements before read is fresh (no later trades then: a trade that
    arrives late for a day before the daily view's last day would wait for its next refresh
    there, while the VaR, whose view ends earlier, reads it live)."""
    bots = {
        "alpha": make_bot("alpha", initial_capital_usd=Decimal("10000")),
        "beta": make_bot("beta", initial_capital_usd=Decimal("20000")),
        "gamma": make_bot("gamma", initial_capital_usd=Decimal("5000")),
        "delta": make_bot("delta", initial_capital_usd=Decimal("7000")),
        "epsilon": make_bot("epsilon", initial_capital_usd=Decimal("1000")),
    }
    Bot.objects.filter(bot_id="beta").update(current_equity_usd=Decimal("20000.5"))
    make_balance(bots["alpha"], ts=TODAY - timedelta(hours=3), equity_usd=Decimal("10500"))
    traders = list(enumerate(("alpha", "beta", "gamma", "delta"), start=1))
    for seed, name in traders:
        trades(bots[name], (n for n in range(1, 130, seed) if n >= 100), seed)
    if view in ("old", "split"):
        refresh_views()
    for seed, name in traders:
        trades(bots[name], (n for n in range(1, 130, seed) if n < 100), seed)
    if view in ("fresh", "stale"):
        refresh_views()
    if view == "split":
        with connection.cursor() as cursor:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {DAILY_PERFORMANCE_VIEW}")
    make_trade(bots["gamma"], entry_time=TODAY - timedelta(hours=2))  # open: never counted
    return bots


def later_trades(bots: dict[str, Bot]) -> None:
    """Trades after a refresh: today's, the view's last day's, one on an older day (late), one
    exactly at today's midnight and one after "now"."""
    close(bots["gamma"], TODAY + timedelta(hours=1), "12.34")
    close(bots["gamma"], TODAY, "-3.21")
    close(bots["delta"], TODAY - timedelta(hours=2), "45.6")
    close(bots["delta"], TODAY - timedelta(days=20), "-7.77")
    close(bots["alpha"], TODAY + timedelta(days=3), "-99")


def both(now: datetime) -> tuple[Any, Any, Any, Any]:
    """(bots before, bots now, VaR before, VaR now) at ``now``, with the selector's parameters."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    bots = {"today": today, "tomorrow": today + timedelta(days=1)}
    day: date = today.date()
    var = {
        "window_start": day - timedelta(days=VAR_WINDOW_DAYS),
        "yesterday": day - timedelta(days=1),
        "today": today,
    }
    return (
        list(fetch_all(BOTS_SQL_BEFORE, bots)),
        list(fetch_all(_BOTS_SQL, bots)),
        fetch_one(VAR_SQL_BEFORE, var),
        fetch_one(_VAR_SQL, var),
    )


NOWS = [
    TODAY + timedelta(hours=12),
    TODAY + timedelta(days=5),  # the view's days and the live ones all before today
    TODAY - timedelta(days=30, hours=-6),  # the view holds days after "now"
    TODAY - timedelta(days=200),  # before every trade
]


@pytest.mark.parametrize("view", ["empty", "fresh", "stale", "old", "split"])
def test_the_rewritten_statements_answer_as_before(view: str) -> None:
    refresh_views()  # empty: a transactional test elsewhere may have left rows in them
    bots = fleet(view)
    if view in ("stale", "old"):  # not "split": a late trade waits for the daily view's refresh
        later_trades(bots)

    for now in NOWS:
        bots_before, bots_now, var_before, var_now = both(now)
        assert bots_now == bots_before, now
        assert var_now == var_before, now


def test_realized_equity_sums_every_pnl_live_or_from_the_view() -> None:
    """The figures compared above are not empty: delta's realized pnl, at a view fresh, stale
    and never refreshed, is the sum of its closed trades (backtests out), whichever side of
    today's midnight and of the view's last day they fall; VaR has its 90 days."""
    refresh_views()
    delta = make_bot("delta", initial_capital_usd=Decimal("7000"))
    total = trades(delta, range(1, 130, 2), 5)
    assert total == Decimal("248.75")
    now = TODAY + timedelta(hours=12)

    def realized() -> Decimal:
        rows = both(now)[1]
        return rows[0]["realized_pnl_usd"]

    assert realized() == total
    refresh_views()
    assert realized() == total
    late = [(TODAY - timedelta(days=1), "10"), (TODAY, "-2.5"), (TODAY + timedelta(hours=1), "4")]
    for exit_, pnl in late:
        total += close(delta, exit_, pnl)
    assert realized() == total == Decimal("260.25")
    _, _, var_before, var_now = both(now)
    assert var_now == var_before and var_now["days"] == 90
