"""One bot's trades per period (day, ISO week, month) and per exit reason or entry tag.

Both are one GROUP BY over the bot's closed trades of the scope (METRICS.md "Breakdowns").
"""

from datetime import datetime
from typing import Any

from analytics.selectors.common import bot_scope, fetch_all, ratio, usd
from trading.models import Bot

# date_trunc's unit for each period; 'week' starts on Monday (ISO weeks), days are UTC days.
PERIODS = {"day": "day", "week": "week", "month": "month"}
BREAKDOWNS = {"exit_reason": "exit_reason", "entry_tag": "entry_tag"}

_PERFORMANCE_SQL = """
WITH s AS MATERIALIZED (SELECT {start} AS e0
), p AS (
    SELECT date_trunc(%(unit)s, t.exit_time AT TIME ZONE 'UTC')::date AS period_start,
           count(*)::int                                              AS trades,
           (count(*) FILTER (WHERE t.pnl_usd > 0))::int               AS wins,
           (count(*) FILTER (WHERE t.pnl_usd < 0))::int               AS losses,
           sum(t.pnl_usd)                                             AS net_pnl_usd,
           sum(t.fees_usd)                                            AS fees_usd
    FROM trading.trades t
    WHERE {closed}
    GROUP BY 1
)
SELECT p.*,
       s.e0 + COALESCE(sum(p.net_pnl_usd) OVER (
           ORDER BY p.period_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
           AS starting_equity_usd
FROM p CROSS JOIN s
ORDER BY p.period_start
"""

_BREAKDOWN_SQL = """
SELECT t.{column}                                                  AS key,
       count(*)::int                                               AS trades,
       (count(*) FILTER (WHERE t.pnl_usd > 0))::int                AS wins,
       (count(*) FILTER (WHERE t.pnl_usd < 0))::int                AS losses,
       sum(t.pnl_usd)                                              AS net_pnl_usd,
       avg(t.pnl_usd)                                              AS avg_pnl_usd,
       avg(date_part('epoch', t.exit_time - t.entry_time))         AS avg_duration_s
FROM trading.trades t
WHERE {closed}
GROUP BY t.{column}
ORDER BY net_pnl_usd DESC, key
"""


def bot_performance(
    *,
    bot: Bot,
    period: str,
    since: datetime | None = None,
    until: datetime | None = None,
    include_backtest: bool = False,
) -> list[dict[str, Any]]:
    """The closed trades per UTC day, ISO week (Monday) or calendar month of exit, oldest
    first; only periods with a closed trade. starting_equity_usd is the realized equity at the
    period's start; return_pct = net_pnl_usd / starting_equity_usd x 100. One statement."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    scope = bot_scope(bot=bot, since=since, until=until, include_backtest=include_backtest)
    scope.params["unit"] = PERIODS[period]
    sql = _PERFORMANCE_SQL.format(start=scope.start_equity_sql(), closed=scope.closed("t"))
    rows = []
    for row in fetch_all(sql, scope.params):
        start = row["starting_equity_usd"]
        rows.append(
            {
                "period_start": row["period_start"],
                "trades": row["trades"],
                "wins": row["wins"],
                "losses": row["losses"],
                "net_pnl_usd": usd(row["net_pnl_usd"]),
                "fees_usd": usd(row["fees_usd"]),
                "starting_equity_usd": usd(start),
                "return_pct": ratio(row["net_pnl_usd"] / start * 100) if start > 0 else None,
            }
        )
    return rows


def bot_breakdown(
    *,
    bot: Bot,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    include_backtest: bool = False,
) -> list[dict[str, Any]]:
    """The closed trades per exit_reason or entry_tag (as freqtrade's /exits and /entries),
    best net pnl first; trades without one are under the key "". One statement."""
    if by not in BREAKDOWNS:
        raise ValueError(f"by must be one of {', '.join(BREAKDOWNS)}, not {by!r}")
    scope = bot_scope(bot=bot, since=since, until=until, include_backtest=include_backtest)
    sql = _BREAKDOWN_SQL.format(column=BREAKDOWNS[by], closed=scope.closed("t"))
    return [
        {
            "key": row["key"],
            "trades": row["trades"],
            "wins": row["wins"],
            "losses": row["losses"],
            "win_rate": ratio(row["wins"] / row["trades"]),
            "net_pnl_usd": usd(row["net_pnl_usd"]),
            "avg_pnl_usd": usd(row["avg_pnl_usd"]),
            "avg_duration_s": ratio(row["avg_duration_s"]),
        }
        for row in fetch_all(sql, scope.params)
    ]
