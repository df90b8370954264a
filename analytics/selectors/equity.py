"""One bot's realized equity curve (one point per closed trade) and the equity it reported.

Either whole, or down-sampled for a chart: with ``max_points``, a longer series is cut into
equal spans of time, and each span keeps only the points that draw it: its first and last,
its lowest and highest equity, and (on the realized curve) its deepest drawdown, plus the peak
the bot's maximum drawdown fell from. Every point kept is one of the series' own, unchanged, so
a line through them has the series' extremes at the resolution asked; nothing is averaged.
(M4, Jugel et al., VLDB 2014, with the drawdown's extreme added.)
"""

from datetime import datetime
from typing import Any

from analytics.curve_sql import curve_cte
from analytics.selectors.common import bot_scope, fetch_all, usd
from trading.models import AccountBalance, Bot

# The fewest points a caller may ask for: one span of the curve keeps up to five, plus the peak.
MIN_POINTS = 6
CURVE_POINTS_PER_SPAN = 5  # first, last, lowest, highest, deepest drawdown
REPORTED_POINTS_PER_SPAN = 4  # first, last, lowest, highest

_POINT = """exit_time AS ts, round(equity, 8) AS equity_usd, round(peak, 8) AS peak_usd,
       round(peak - equity, 8) AS drawdown_usd,
       round((peak - equity) / peak * 100, 6)::float8 AS drawdown_pct"""

_CURVE_SQL = (
    "WITH "
    + curve_cte()
    + f"""
SELECT {_POINT}
FROM c
ORDER BY exit_time, id
"""  # noqa: S608 - constant text; values are parameters
)

# The span of time a point falls in: 0 to spans - 1, over [first, last] of the series.
_SPAN = """CASE WHEN span.width > 0
     THEN LEAST(%(spans)s - 1, floor(date_part('epoch', {at} - span.first) / span.width
                                     * %(spans)s))::int
     ELSE 0 END"""

# Drawdowns are ordered as the summary orders them to find the maximum drawdown's trough, so the
# trough is the deepest of the spans' deepest points; the peak it fell from is added by name.
_SAMPLED_CURVE_SQL = (
    "WITH "  # noqa: S608 - constant text; values are parameters
    + curve_cte()
    + f"""
, span AS MATERIALIZED (
    SELECT count(*)::int AS total, min(exit_time) AS first,
           date_part('epoch', max(exit_time) - min(exit_time)) AS width
    FROM c
), kept AS (
    SELECT (array_agg(id ORDER BY exit_time, id))[1]                  AS first_id,
           (array_agg(id ORDER BY exit_time DESC, id DESC))[1]        AS last_id,
           (array_agg(id ORDER BY equity, exit_time, id))[1]          AS low_id,
           (array_agg(id ORDER BY equity DESC, exit_time, id))[1]     AS high_id,
           (array_agg(id ORDER BY drawdown DESC, exit_time, id))[1]   AS deep_id
    FROM (
        SELECT c.id, c.exit_time, c.equity,
               (c.peak - c.equity)::float8 / c.peak::float8 AS drawdown,
               {_SPAN.format(at="c.exit_time")} AS span
        FROM c CROSS JOIN span
    ) p
    GROUP BY p.span
), trough AS (
    SELECT id, exit_time, peak FROM c
    WHERE equity < peak AND id IN (SELECT deep_id FROM kept)
    ORDER BY (peak - equity)::float8 / peak::float8 DESC, exit_time, id
    LIMIT 1
), top AS (
    SELECT c.id FROM c, trough
    WHERE (c.exit_time, c.id) <= (trough.exit_time, trough.id) AND c.equity = trough.peak
    ORDER BY c.exit_time DESC, c.id DESC
    LIMIT 1
)
SELECT span.total, {_POINT}
FROM c CROSS JOIN span
WHERE span.total <= %(max_points)s
   OR c.id IN (SELECT unnest(ARRAY[first_id, last_id, low_id, high_id, deep_id]) FROM kept
               UNION SELECT id FROM top)
ORDER BY exit_time, id
"""  # noqa: S608
)

_SAMPLED_REPORTED_SQL = f"""
WITH r AS MATERIALIZED (
    SELECT ab.id, ab.ts, ab.equity_usd FROM trading.account_balance ab
    WHERE ab.bot_id = %(bot_id)s {{since}} {{until}}
), span AS MATERIALIZED (
    SELECT count(*)::int AS total, min(ts) AS first,
           date_part('epoch', max(ts) - min(ts)) AS width
    FROM r
), kept AS (
    SELECT (array_agg(r.id ORDER BY r.ts, r.id))[1]                   AS first_id,
           (array_agg(r.id ORDER BY r.ts DESC, r.id DESC))[1]         AS last_id,
           (array_agg(r.id ORDER BY r.equity_usd, r.ts, r.id))[1]     AS low_id,
           (array_agg(r.id ORDER BY r.equity_usd DESC, r.ts, r.id))[1] AS high_id
    FROM r CROSS JOIN span
    GROUP BY {_SPAN.format(at="r.ts")}
)
SELECT span.total, r.ts, r.equity_usd
FROM r CROSS JOIN span
WHERE span.total <= %(max_points)s
   OR r.id IN (SELECT unnest(ARRAY[first_id, last_id, low_id, high_id]) FROM kept)
ORDER BY r.ts, r.id
"""  # noqa: S608 - constant text; values are parameters


def bot_equity_curve(
    *,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    include_backtest: bool = False,
    max_points: int | None = None,
) -> dict[str, Any]:
    """The realized equity curve, one point per closed trade in exit order, and beside it the
    equity the bot reported (account_balance), oldest first. Two statements.

    With ``max_points``, either series longer than that is down-sampled (module docstring) to
    at most ``max_points`` points; points_total and reported_total count the whole series.
    """
    if max_points is not None and max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, not {max_points}")
    scope = bot_scope(bot=bot, since=since, until=until, include_backtest=include_backtest)
    params = {
        **scope.params,
        "max_points": max_points,
        # The peak of the maximum drawdown may come on top of five points a span.
        "spans": None if max_points is None else (max_points - 1) // CURVE_POINTS_PER_SPAN,
    }
    sql = (_CURVE_SQL if max_points is None else _SAMPLED_CURVE_SQL).format(
        start=scope.start_equity_sql(), closed=scope.closed("t")
    )
    # Rounded by the statement (money to 8 places, the percentage to 6).
    rows = list(fetch_all(sql, params))
    points_total = len(rows)
    if max_points is not None and rows:
        points_total = rows[0]["total"]
        for row in rows:
            del row["total"]
    reported_total, reported = _reported(bot=bot, since=since, until=until, max_points=max_points)
    return {
        "bot_id": bot.bot_id,
        "initial_capital_usd": usd(bot.initial_capital_usd),
        "points_total": points_total,
        "points": rows,
        "reported_total": reported_total,
        "reported": reported,
    }


def _reported(
    *, bot: Bot, since: datetime | None, until: datetime | None, max_points: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """How many account_balance rows the bot has in [since, until), and those to draw."""
    if max_points is None:
        balances = AccountBalance.objects.filter(bot=bot)
        if since is not None:
            balances = balances.filter(ts__gte=since)
        if until is not None:
            balances = balances.filter(ts__lt=until)
        reported = [
            {"ts": ts, "equity_usd": equity}
            for ts, equity in balances.order_by("ts", "id").values_list("ts", "equity_usd")
        ]
        return len(reported), reported
    sql = _SAMPLED_REPORTED_SQL.format(
        since="AND ab.ts >= %(since)s" if since is not None else "",
        until="AND ab.ts < %(until)s" if until is not None else "",
    )
    params = {
        "bot_id": bot.bot_id,
        "since": since,
        "until": until,
        "max_points": max_points,
        "spans": max_points // REPORTED_POINTS_PER_SPAN,
    }
    rows = list(fetch_all(sql, params))
    total = rows[0]["total"] if rows else 0
    return total, [{"ts": row["ts"], "equity_usd": row["equity_usd"]} for row in rows]
