"""SQL of the materialized views (METRICS.md definitions). Used by migrations and refreshes.

The views count closed trades that are not backtests. The summary adds up the daily view's rows
and walks each bot's trades once for the drawdown, and the portfolio's daily pnl adds up each
day's rows of the daily view, so both must be refreshed after the daily view: MATERIALIZED_VIEWS
is in refresh order.
"""

DAILY_PERFORMANCE_VIEW = "analytics.bot_daily_performance"
PERFORMANCE_SUMMARY_VIEW = "analytics.bot_performance_summary"
PORTFOLIO_DAILY_VIEW = "analytics.portfolio_daily_pnl"
MATERIALIZED_VIEWS = (DAILY_PERFORMANCE_VIEW, PERFORMANCE_SUMMARY_VIEW, PORTFOLIO_DAILY_VIEW)

# best_trade_usd, worst_trade_usd and duration_s (seconds held, summed over the day's trades)
# are there for the summary. Every aggregate is work on each of a million trades, so breakeven
# and gross_loss_usd are derived from the others: the same numbers to the digit (a day without
# losses keeps the plain 0 that COALESCE(sum(...), 0) gave).
CREATE_DAILY_PERFORMANCE = """
CREATE MATERIALIZED VIEW analytics.bot_daily_performance AS
SELECT bot_id, day, trades, wins, losses,
       trades - wins - losses                                              AS breakeven,
       gross_profit_usd,
       CASE WHEN losses = 0 THEN 0 ELSE gross_profit_usd - net_pnl_usd END AS gross_loss_usd,
       net_pnl_usd, fees_usd, volume_usd, best_trade_usd, worst_trade_usd, duration_s
FROM (
    SELECT t.bot_id,
           (t.exit_time AT TIME ZONE 'UTC')::date                  AS day,
           count(*)::int                                            AS trades,
           (count(*) FILTER (WHERE t.pnl_usd > 0))::int             AS wins,
           (count(*) FILTER (WHERE t.pnl_usd < 0))::int             AS losses,
           COALESCE(sum(t.pnl_usd) FILTER (WHERE t.pnl_usd > 0), 0) AS gross_profit_usd,
           sum(t.pnl_usd)                                           AS net_pnl_usd,
           sum(t.fees_usd)                                          AS fees_usd,
           sum(t.quantity * t.entry_price)                          AS volume_usd,
           max(t.pnl_usd)                                           AS best_trade_usd,
           min(t.pnl_usd)                                           AS worst_trade_usd,
           EXTRACT(EPOCH FROM sum(t.exit_time - t.entry_time))      AS duration_s
    FROM trading.trades t
    WHERE t.status = 'closed' AND t.source <> 'backtest'
    GROUP BY t.bot_id, (t.exit_time AT TIME ZONE 'UTC')::date
) per_day;
CREATE UNIQUE INDEX bot_daily_performance_bot_day_uniq
    ON analytics.bot_daily_performance (bot_id, day);
"""

# For analytics.selectors.portfolio: the view's last day, the fleet's pnl over a range of days.
CREATE_DAILY_DAY_INDEX = """
CREATE INDEX IF NOT EXISTS bot_daily_performance_day_idx
    ON analytics.bot_daily_performance (day) INCLUDE (bot_id, net_pnl_usd);
"""

# The summary: the daily view's counts and sums added up (an average is such a sum over such a
# count, which is what avg() computes), first and last trade times by one index probe per bot,
# and the drawdown of the realized equity curve by analytics.bot_drawdown.
# The drawdown needs the running peak of a running sum: in SQL, two stacked window passes, each
# spooling every trade through a tuplestore. One ordered pass per bot over the covering index
# trading.trades_bot_closed_curve_idx takes less than half the time. STABLE, so that its query
# reads the snapshot of the statement that calls it, as the rest of the summary does.
CREATE_PERFORMANCE_SUMMARY = """
CREATE FUNCTION analytics.bot_drawdown(
    bot text, initial_capital numeric, OUT max_drawdown_usd numeric, OUT max_drawdown_pct numeric
) LANGUAGE plpgsql STABLE AS $$
-- The realized equity curve E = initial capital + running sum of pnl in exit order, ties broken
-- by id (trades closing on the same second have one order); the peak starts at initial capital.
-- The results are the numbers max(peak - E) and max((peak - E) / peak * 100) over all points
-- give, to the last digit of scale. Under one peak the divisor is the same, so only a new low
-- can set either maximum; of equal percentages the later is kept, as max() keeps it; without
-- any drawdown, both are the zeros of the last point.
DECLARE
    pnl  numeric;
    cum  numeric := 0;  -- E - initial capital
    peak numeric := 0;  -- its running peak
    low  numeric := 0;  -- its lowest point since that peak
    fall numeric;
    pct  numeric;
BEGIN
    FOR pnl IN
        SELECT t.pnl_usd FROM trading.trades t
        WHERE t.bot_id = bot AND t.status = 'closed' AND t.source <> 'backtest'
        ORDER BY t.exit_time, t.id
    LOOP
        cum := cum + pnl;
        IF cum > peak THEN
            peak := cum;
            low := cum;
        ELSIF cum <= low THEN
            low := cum;
            fall := peak - cum;
            IF max_drawdown_usd IS NULL OR fall > max_drawdown_usd THEN
                max_drawdown_usd := fall;
            END IF;
            pct := fall / (initial_capital + peak) * 100;
            IF max_drawdown_pct IS NULL OR pct >= max_drawdown_pct THEN
                max_drawdown_pct := pct;
            END IF;
        END IF;
    END LOOP;
    IF FOUND AND (max_drawdown_pct IS NULL OR max_drawdown_pct = 0) THEN
        max_drawdown_usd := peak - cum;
        max_drawdown_pct := (peak - cum) / (initial_capital + peak) * 100;
    END IF;
END
$$;
CREATE MATERIALIZED VIEW analytics.bot_performance_summary AS
WITH days AS (
    SELECT bot_id,
           sum(trades)::int      AS trades_closed,
           sum(wins)::int        AS wins,
           sum(losses)::int      AS losses,
           sum(breakeven)::int   AS breakeven,
           sum(gross_profit_usd) AS gross_profit_usd,
           sum(gross_loss_usd)   AS gross_loss_usd,
           sum(net_pnl_usd)      AS net_pnl_usd,
           max(best_trade_usd)   AS best_trade_usd,
           min(worst_trade_usd)  AS worst_trade_usd,
           sum(duration_s)       AS duration_s,
           sum(fees_usd)         AS fees_usd,
           sum(volume_usd)       AS volume_usd
    FROM analytics.bot_daily_performance
    GROUP BY bot_id
)
SELECT b.bot_id,
       COALESCE(a.trades_closed, 0)                                    AS trades_closed,
       COALESCE(a.wins, 0)                                             AS wins,
       COALESCE(a.losses, 0)                                           AS losses,
       COALESCE(a.breakeven, 0)                                        AS breakeven,
       a.wins::numeric / NULLIF(a.trades_closed, 0)                    AS win_rate,
       COALESCE(a.gross_profit_usd, 0)                                 AS gross_profit_usd,
       COALESCE(a.gross_loss_usd, 0)                                   AS gross_loss_usd,
       COALESCE(a.net_pnl_usd, 0)                                      AS net_pnl_usd,
       a.gross_profit_usd / NULLIF(a.gross_loss_usd, 0)                AS profit_factor,
       a.net_pnl_usd / NULLIF(a.trades_closed, 0)                      AS expectancy_usd,
       a.gross_profit_usd / NULLIF(a.wins, 0)                          AS avg_win_usd,
       a.gross_loss_usd / NULLIF(a.losses, 0)                          AS avg_loss_usd,
       a.best_trade_usd,
       a.worst_trade_usd,
       a.duration_s / NULLIF(a.trades_closed, 0)                       AS avg_duration_s,
       COALESCE(a.fees_usd, 0)                                         AS fees_usd,
       COALESCE(a.volume_usd, 0)                                       AS volume_usd,
       COALESCE(d.max_drawdown_usd, 0)                                 AS max_drawdown_usd,
       COALESCE(d.max_drawdown_pct, 0)                                 AS max_drawdown_pct,
       (SELECT min(t.entry_time) FROM trading.trades t
        WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest')
                                                                       AS first_trade_at,
       (SELECT max(t.exit_time) FROM trading.trades t
        WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest')
                                                                       AS last_trade_at
FROM trading.bots b
LEFT JOIN days a ON a.bot_id = b.bot_id
CROSS JOIN LATERAL analytics.bot_drawdown(b.bot_id, b.initial_capital_usd) d;
CREATE UNIQUE INDEX bot_performance_summary_bot_uniq
    ON analytics.bot_performance_summary (bot_id);
"""

# The fleet's realized pnl per UTC exit day: the daily view's rows of each day added up (one row a
# day, some hundreds in all, where the daily view has one per bot and day). For the portfolio's
# VaR (analytics.selectors.portfolio), which reads whole days of the fleet: at 1,000 bots a year
# of the daily view is 365,000 rows to add up on every call.
CREATE_PORTFOLIO_DAILY = """
CREATE MATERIALIZED VIEW analytics.portfolio_daily_pnl AS
SELECT day, sum(net_pnl_usd) AS net_pnl_usd
FROM analytics.bot_daily_performance
GROUP BY day;
CREATE UNIQUE INDEX portfolio_daily_pnl_day_uniq
    ON analytics.portfolio_daily_pnl (day) INCLUDE (net_pnl_usd);
"""

DROP_VIEWS = """
DROP MATERIALIZED VIEW IF EXISTS analytics.portfolio_daily_pnl;
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_performance_summary;
DROP FUNCTION IF EXISTS analytics.bot_drawdown(text, numeric);
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_daily_performance;
"""
