"""The realized equity curve's SQL text, shared by the summary statement (selectors/bots.py),
its checkpoint's build (services/summaries.py) and the equity curve (selectors/equity.py).

A module of its own so that the selector and the service each import it, not each other, and
so the statement and the checkpoint it continues cannot drift apart.
"""


def curve_cte(columns: str = "") -> str:
    """``s`` (e0, the equity the period starts from) and ``c``: the closed trades of the scope
    with the realized equity after each and its running peak (starting at e0), in exit order,
    with the trade ``columns`` asked for. Shared by the summary and the curve; ``{start}`` and
    ``{closed}`` are left for the caller to fill."""
    return f"""
s AS MATERIALIZED (SELECT {{start}} AS e0
), t AS MATERIALIZED (
    SELECT t.id, t.pnl_usd, t.exit_time, {columns}
           s.e0,
           s.e0 + sum(t.pnl_usd) OVER w AS equity
    FROM trading.trades t CROSS JOIN s
    WHERE {{closed}}
    WINDOW w AS (ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING)
), c AS MATERIALIZED (
    SELECT t.*, GREATEST(t.e0, max(t.equity) OVER w) AS peak
    FROM t
    WINDOW w AS (ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING)
)
"""  # noqa: S608 - constant text; values are parameters


# The trade columns the summary reads besides curve_cte's own.
SUMMARY_TRADE_COLUMNS = (
    "t.fees_usd, t.quantity * t.entry_price AS volume_usd, t.entry_time,"
    " date_part('epoch', t.exit_time - t.entry_time) AS duration_s,"
)

# What the summary derives from the curve, after an ``agg`` CTE (over ``c``) that gives
# first_trade_at and last_trade_at: ``trough``, the deepest point below the running peak by
# percentage (ties to the earliest), and ``returns``, one return per UTC day from the first
# entry's day to the last exit's, zero-pnl days included, over the equity at the day's start.
# Shared by the summary statement and its checkpoint's build (analytics.services.summaries),
# so the two cannot drift apart.
SUMMARY_CURVE_CTES = """
, trough AS (
    SELECT exit_time, id, peak, equity, (peak - equity) / peak * 100 AS pct
    FROM c
    WHERE equity < peak
    ORDER BY (peak - equity)::float8 / peak::float8 DESC, exit_time, id
    LIMIT 1
), daily AS (
    SELECT (exit_time AT TIME ZONE 'UTC')::date AS day, sum(pnl_usd) AS pnl
    FROM t
    GROUP BY 1
), series AS (
    SELECT g.day, COALESCE(daily.pnl, 0) AS pnl
    FROM agg
    CROSS JOIN LATERAL generate_series(
        (agg.first_trade_at AT TIME ZONE 'UTC')::date,
        (agg.last_trade_at AT TIME ZONE 'UTC')::date,
        interval '1 day'
    ) AS g(day)
    LEFT JOIN daily ON daily.day = g.day::date
), returns AS (
    SELECT day,
           (pnl / NULLIF(s.e0 + COALESCE(sum(pnl) OVER (
               ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0))::float8 AS r
    FROM series CROSS JOIN s
)
"""
