"""The daily risk rollup: one trading.risk_metrics row per bot per UTC day (METRICS.md).

A day's row is built from the previous day's row plus that day's trades, so today's rollup reads
one day of trades, not all history (100 bots at 1,000,000 trades in a few milliseconds):

- the realized equity at the close (``equity_close_usd``), its running peak
  (``equity_peak_usd``) and the max drawdown so far continue from the previous row;
- the 30-day Sharpe and Sortino read the daily returns of the previous 29 rows
  (r_d = net_pnl_d / (equity_close_d - net_pnl_d)) and today's.

The chain starts at a bot's first day (the earlier of its creation day and its first trade's
entry day) at initial capital. When a bot's previous-day row is missing, the missing days are
rolled up first, oldest first, so every row is exact whatever the order runs came in.

A trade written for a day before yesterday (late, corrected, imported) marks its bot in
trading.RiskMetricsBacklog in the same statement; ``risk_metrics_backlog_redo`` (run by every
scheduled rollup, and queued after an import) rolls the marked days up again.

``exposure_usd``: for today, the open positions' exposure now (quantity x current price, or
average entry price where no price is known; METRICS.md). A past day keeps the exposure measured
by the last rollup run while it was today (the scheduled task runs every 15 minutes); a past
day rolled up for the first time (a backfill) gets the entry notional of the trades open at the
end of that day, since positions hold no history.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from trading.models import RiskMetricsBacklog

# NUMERIC(12, 6) columns hold ratios below a million; a ratio past it (a profit factor over a
# loss of a cent, a drawdown of a loss many times the capital) is stored at the bound rather
# than failing the statement that writes every bot's row.
RATIO_BOUND = "999999.999999"
WINDOW_DAYS = 30


def _ratio(expr: str) -> str:
    """``expr`` rounded to 6 places and held within the column's bounds; NULL stays NULL."""
    return (
        f"CASE WHEN abs({expr}) > {RATIO_BOUND} THEN sign({expr}) * {RATIO_BOUND} "
        f"ELSE round({expr}, 6) END"
    )


# Which bots a day concerns, where each one's chain of rows stands, and whether the day has a row.
PLAN_SQL = """
SELECT b.bot_id,
       (SELECT max(r.date) FROM trading.risk_metrics r
        WHERE r.bot_id = b.bot_id AND r.date < %(day)s) AS last_date,
       LEAST((b.created_at AT TIME ZONE 'UTC')::date,
             (SELECT (t.entry_time AT TIME ZONE 'UTC')::date FROM trading.trades t
              WHERE t.bot_id = b.bot_id AND t.source <> 'backtest' AND t.status <> 'cancelled'
              ORDER BY t.entry_time LIMIT 1)) AS start_day,
       EXISTS (SELECT FROM trading.risk_metrics r
               WHERE r.bot_id = b.bot_id AND r.date = %(day)s) AS has_row
FROM trading.bots b
WHERE %(all_bots)s OR b.bot_id = ANY(%(bot_ids)s::text[])
ORDER BY b.bot_id
"""

EXPOSURE_NOW_SQL = """
    SELECT p.bot_id, sum(p.quantity * COALESCE(p.current_price, p.avg_entry_price)) AS exposure
    FROM trading.positions p
    WHERE p.bot_id = ANY(%(bot_ids)s::text[]) AND p.status <> 'closed'
    GROUP BY p.bot_id
"""

EXPOSURE_PAST_SQL = """
    SELECT r.bot_id, r.exposure_usd AS exposure
    FROM trading.risk_metrics r
    WHERE r.bot_id = ANY(%(bot_ids)s::text[]) AND r.date = %(day)s
    UNION ALL
    SELECT t.bot_id, sum(t.quantity * t.entry_price)
    FROM trading.trades t
    WHERE t.bot_id = ANY(%(unmeasured)s::text[]) AND t.source <> 'backtest'
      AND t.status IN ('open', 'closed') AND t.entry_time < %(end)s
      AND (t.exit_time IS NULL OR t.exit_time >= %(end)s)
    GROUP BY t.bot_id
"""

# The curve is ordered by exit time, ties by id (as analytics.bot_performance_summary).
ROLLUP_SQL = f"""
WITH target AS (
    SELECT b.bot_id, b.initial_capital_usd AS initial
    FROM trading.bots b
    WHERE b.bot_id = ANY(%(bot_ids)s::text[])
), base AS (
    SELECT t.bot_id,
           COALESCE(p.equity_close_usd, t.initial) AS equity_open,
           GREATEST(t.initial, COALESCE(p.equity_peak_usd, p.equity_close_usd, t.initial))
               AS peak_open,
           COALESCE(p.max_drawdown_pct, 0) AS drawdown_open
    FROM target t
    LEFT JOIN trading.risk_metrics p ON p.bot_id = t.bot_id AND p.date = %(day)s::date - 1
), closed AS (
    SELECT t.bot_id, t.id, t.exit_time, t.pnl_usd, t.fees_usd
    FROM trading.trades t
    WHERE t.bot_id = ANY(%(bot_ids)s::text[]) AND t.status = 'closed'
      AND t.source <> 'backtest' AND t.exit_time >= %(start)s AND t.exit_time < %(end)s
), curve AS (
    SELECT c.bot_id, c.id, c.exit_time, c.pnl_usd, c.fees_usd, b.peak_open,
           b.equity_open + sum(c.pnl_usd) OVER (
               PARTITION BY c.bot_id ORDER BY c.exit_time, c.id ROWS UNBOUNDED PRECEDING
           ) AS equity
    FROM closed c
    JOIN base b ON b.bot_id = c.bot_id
), peaks AS (
    SELECT bot_id, pnl_usd, fees_usd, equity,
           GREATEST(peak_open, max(equity) OVER (
               PARTITION BY bot_id ORDER BY exit_time, id ROWS UNBOUNDED PRECEDING
           )) AS peak
    FROM curve
), day_stats AS (
    SELECT bot_id,
           count(*) AS trades_closed,
           count(*) FILTER (WHERE pnl_usd > 0) AS wins,
           count(*) FILTER (WHERE pnl_usd < 0) AS losses,
           COALESCE(sum(pnl_usd) FILTER (WHERE pnl_usd > 0), 0) AS gross_profit,
           COALESCE(-sum(pnl_usd) FILTER (WHERE pnl_usd < 0), 0) AS gross_loss,
           sum(pnl_usd) AS net_pnl,
           sum(fees_usd) AS fees,
           max(peak) AS peak_close,
           max((peak - equity) / peak * 100) AS drawdown_day
    FROM peaks
    GROUP BY bot_id
), rolled AS (
    SELECT b.bot_id, b.equity_open,
           COALESCE(s.trades_closed, 0) AS trades_closed,
           COALESCE(s.wins, 0) AS wins,
           COALESCE(s.losses, 0) AS losses,
           COALESCE(s.gross_profit, 0) AS gross_profit,
           COALESCE(s.gross_loss, 0) AS gross_loss,
           COALESCE(s.net_pnl, 0) AS net_pnl,
           COALESCE(s.fees, 0) AS fees,
           b.equity_open + COALESCE(s.net_pnl, 0) AS equity_close,
           GREATEST(b.peak_open, s.peak_close) AS peak_close,
           GREATEST(b.drawdown_open, s.drawdown_day) AS max_drawdown
    FROM base b
    LEFT JOIN day_stats s ON s.bot_id = b.bot_id
), first_day AS (
    -- Returns count from the day of the first closed trade's entry (METRICS.md).
    SELECT t.bot_id, f.day
    FROM target t
    CROSS JOIN LATERAL (
        SELECT (tr.entry_time AT TIME ZONE 'UTC')::date AS day
        FROM trading.trades tr
        WHERE tr.bot_id = t.bot_id AND tr.status = 'closed' AND tr.source <> 'backtest'
          AND tr.exit_time < %(end)s
        ORDER BY tr.entry_time
        LIMIT 1
    ) f
), returns AS (
    SELECT p.bot_id, p.net_pnl_usd / NULLIF(p.equity_close_usd - p.net_pnl_usd, 0) AS r
    FROM trading.risk_metrics p
    JOIN first_day f ON f.bot_id = p.bot_id
    WHERE p.bot_id = ANY(%(bot_ids)s::text[]) AND p.date >= %(window_start)s
      AND p.date < %(day)s AND p.date >= f.day
    UNION ALL
    SELECT r.bot_id, r.net_pnl / NULLIF(r.equity_open, 0)
    FROM rolled r
    JOIN first_day f ON f.bot_id = r.bot_id
), ratios AS (
    SELECT bot_id,
           count(r) AS days,
           avg(r) AS mean,
           stddev_samp(r) AS deviation,
           sqrt(avg(LEAST(r, 0) ^ 2)) AS downside
    FROM returns
    GROUP BY bot_id
), exposure AS (
    {{exposure}}
)
INSERT INTO trading.risk_metrics (
    bot_id, date, trades_closed, wins, losses, win_rate, gross_profit_usd, gross_loss_usd,
    net_pnl_usd, fees_usd, profit_factor, expectancy_usd, max_drawdown_pct, sharpe_30d,
    sortino_30d, exposure_usd, equity_close_usd, equity_peak_usd, computed_at
)
SELECT r.bot_id, %(day)s, r.trades_closed, r.wins, r.losses,
       round(r.wins::numeric / NULLIF(r.trades_closed, 0), 6),
       r.gross_profit, r.gross_loss, r.net_pnl, r.fees,
       {_ratio("r.gross_profit / NULLIF(r.gross_loss, 0)")},
       round(r.net_pnl / NULLIF(r.trades_closed, 0), 8),
       {_ratio("r.max_drawdown")},
       CASE WHEN q.days >= 2 AND q.deviation > 0
            THEN {_ratio("q.mean / q.deviation * sqrt(365::numeric)")} END,
       CASE WHEN q.days >= 2 AND q.downside > 0
            THEN {_ratio("q.mean / q.downside * sqrt(365::numeric)")} END,
       COALESCE(round(e.exposure, 8), 0),
       r.equity_close, r.peak_close, %(now)s
FROM rolled r
LEFT JOIN ratios q ON q.bot_id = r.bot_id
LEFT JOIN exposure e ON e.bot_id = r.bot_id
ON CONFLICT (bot_id, date) DO UPDATE SET
    trades_closed = EXCLUDED.trades_closed,
    wins = EXCLUDED.wins,
    losses = EXCLUDED.losses,
    win_rate = EXCLUDED.win_rate,
    gross_profit_usd = EXCLUDED.gross_profit_usd,
    gross_loss_usd = EXCLUDED.gross_loss_usd,
    net_pnl_usd = EXCLUDED.net_pnl_usd,
    fees_usd = EXCLUDED.fees_usd,
    profit_factor = EXCLUDED.profit_factor,
    expectancy_usd = EXCLUDED.expectancy_usd,
    max_drawdown_pct = EXCLUDED.max_drawdown_pct,
    sharpe_30d = EXCLUDED.sharpe_30d,
    sortino_30d = EXCLUDED.sortino_30d,
    exposure_usd = EXCLUDED.exposure_usd,
    equity_close_usd = EXCLUDED.equity_close_usd,
    equity_peak_usd = EXCLUDED.equity_peak_usd,
    computed_at = EXCLUDED.computed_at
"""  # noqa: S608 - the only interpolations are the fixed SQL fragments above


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _rollup_one_day(*, day: date, bot_ids: list[str], measured: set[str], today: date) -> int:
    """Upsert ``day``'s row of each of ``bot_ids``, assuming their previous-day rows are current.
    ``measured``: the bots that already have a row for ``day`` (whose exposure a past day keeps).
    """
    if not bot_ids:
        return 0
    start, end = _day_bounds(day)
    params: dict[str, Any] = {
        "day": day,
        "start": start,
        "end": end,
        "window_start": day - timedelta(days=WINDOW_DAYS - 1),
        "bot_ids": bot_ids,
        "unmeasured": [b for b in bot_ids if b not in measured],
        "now": timezone.now(),
    }
    exposure = EXPOSURE_NOW_SQL if day == today else EXPOSURE_PAST_SQL
    with connection.cursor() as cursor:
        cursor.execute(ROLLUP_SQL.replace("{exposure}", exposure), params)
        return cursor.rowcount


def risk_metrics_rollup(*, day: date, bot_ids: list[str] | None = None) -> int:
    """Upsert the trading.risk_metrics row of ``day`` (a UTC day, not after today) for every bot,
    or for ``bot_ids``; returns how many rows of ``day`` were written. A bot gets rows from its
    first day on (the earlier of its creation day and its first trade's entry day); missing
    earlier rows of its chain are rolled up first. Running it again rewrites the same rows."""
    today = timezone.now().astimezone(UTC).date()
    if day > today:
        raise ValueError(f"{day} is after today ({today}); nothing has happened on it yet")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            PLAN_SQL, {"day": day, "all_bots": bot_ids is None, "bot_ids": bot_ids or []}
        )
        plan = cursor.fetchall()
        # Missing trailing rows of each bot's chain, by day, oldest first.
        gaps: dict[date, list[str]] = {}
        targets: list[str] = []
        measured: set[str] = set()
        for bot_id, last_date, start_day, has_row in plan:
            if start_day is None or start_day > day:
                continue
            targets.append(bot_id)
            if has_row:
                measured.add(bot_id)
            gap_from = last_date + timedelta(days=1) if last_date else start_day
            for offset in range((day - gap_from).days):
                gaps.setdefault(gap_from + timedelta(days=offset), []).append(bot_id)
        for gap_day in sorted(gaps):
            # Rows of days before ``day`` that do not exist yet: none has a measured exposure.
            _rollup_one_day(day=gap_day, bot_ids=gaps[gap_day], measured=set(), today=today)
        return _rollup_one_day(day=day, bot_ids=targets, measured=measured, today=today)


def risk_metrics_backlog_redo() -> int:
    """Every bot marked in trading.RiskMetricsBacklog: its risk_metrics rows rolled up again
    from the mark's day to today, oldest first (each row builds on the one before). The mark is
    cleared only if no trade moved it meanwhile (then the next run redoes it), and is never
    held locked while the days are redone, so trade writes do not wait for this. The caller
    holds the rollup's lock. Returns the rows written."""
    today = timezone.now().astimezone(UTC).date()
    written = 0
    for mark in RiskMetricsBacklog.objects.order_by("bot_id"):
        day = min(mark.since, today)
        with transaction.atomic():
            while day <= today:
                written += risk_metrics_rollup(day=day, bot_ids=[mark.bot_id])
                day += timedelta(days=1)
            RiskMetricsBacklog.objects.filter(
                bot_id=mark.bot_id, since=mark.since, marked_at=mark.marked_at
            ).delete()
    return written
