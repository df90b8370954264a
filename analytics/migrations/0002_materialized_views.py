"""The two materialized views as first written (METRICS.md definitions). Their SQL is frozen
here: analytics/sql.py holds the views as they are now (migration 0004 and later)."""

from django.db import migrations

CREATE_DAILY_PERFORMANCE = """
CREATE MATERIALIZED VIEW analytics.bot_daily_performance AS
SELECT t.bot_id,
       (t.exit_time AT TIME ZONE 'UTC')::date                      AS day,
       count(*)::int                                                AS trades,
       (count(*) FILTER (WHERE t.pnl_usd > 0))::int                 AS wins,
       (count(*) FILTER (WHERE t.pnl_usd < 0))::int                 AS losses,
       (count(*) FILTER (WHERE t.pnl_usd = 0))::int                 AS breakeven,
       COALESCE(sum(t.pnl_usd) FILTER (WHERE t.pnl_usd > 0), 0)     AS gross_profit_usd,
       COALESCE(-sum(t.pnl_usd) FILTER (WHERE t.pnl_usd < 0), 0)    AS gross_loss_usd,
       sum(t.pnl_usd)                                               AS net_pnl_usd,
       sum(t.fees_usd)                                              AS fees_usd,
       sum(t.quantity * t.entry_price)                              AS volume_usd
FROM trading.trades t
WHERE t.status = 'closed' AND t.source <> 'backtest'
GROUP BY t.bot_id, (t.exit_time AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX bot_daily_performance_bot_day_uniq
    ON analytics.bot_daily_performance (bot_id, day);
"""

CREATE_PERFORMANCE_SUMMARY = """
CREATE MATERIALIZED VIEW analytics.bot_performance_summary AS
WITH closed AS (
    SELECT t.bot_id, t.pnl_usd, t.fees_usd, t.entry_time, t.exit_time,
           t.quantity * t.entry_price AS volume_usd,
           EXTRACT(EPOCH FROM (t.exit_time - t.entry_time)) AS duration_s,
           b.initial_capital_usd AS initial,
           b.initial_capital_usd + sum(t.pnl_usd) OVER (
               PARTITION BY t.bot_id ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING
           ) AS equity,
           t.id
    FROM trading.trades t
    JOIN trading.bots b ON b.bot_id = t.bot_id
    WHERE t.status = 'closed' AND t.source <> 'backtest'
), curve AS (
    SELECT bot_id, equity,
           GREATEST(initial, max(equity) OVER (
               PARTITION BY bot_id ORDER BY exit_time, id ROWS UNBOUNDED PRECEDING
           )) AS peak
    FROM closed
), drawdown AS (
    SELECT bot_id,
           max(peak - equity)                AS max_drawdown_usd,
           max((peak - equity) / peak * 100) AS max_drawdown_pct
    FROM curve
    GROUP BY bot_id
), agg AS (
    SELECT bot_id,
           count(*)::int                                               AS trades_closed,
           (count(*) FILTER (WHERE pnl_usd > 0))::int                  AS wins,
           (count(*) FILTER (WHERE pnl_usd < 0))::int                  AS losses,
           (count(*) FILTER (WHERE pnl_usd = 0))::int                  AS breakeven,
           COALESCE(sum(pnl_usd) FILTER (WHERE pnl_usd > 0), 0)        AS gross_profit_usd,
           COALESCE(-sum(pnl_usd) FILTER (WHERE pnl_usd < 0), 0)       AS gross_loss_usd,
           sum(pnl_usd)                                                AS net_pnl_usd,
           avg(pnl_usd) FILTER (WHERE pnl_usd > 0)                     AS avg_win_usd,
           -avg(pnl_usd) FILTER (WHERE pnl_usd < 0)                    AS avg_loss_usd,
           max(pnl_usd)                                                AS best_trade_usd,
           min(pnl_usd)                                                AS worst_trade_usd,
           avg(duration_s)                                             AS avg_duration_s,
           sum(fees_usd)                                               AS fees_usd,
           sum(volume_usd)                                             AS volume_usd,
           min(entry_time)                                             AS first_trade_at,
           max(exit_time)                                              AS last_trade_at
    FROM closed
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
       a.avg_win_usd,
       a.avg_loss_usd,
       a.best_trade_usd,
       a.worst_trade_usd,
       a.avg_duration_s,
       COALESCE(a.fees_usd, 0)                                         AS fees_usd,
       COALESCE(a.volume_usd, 0)                                       AS volume_usd,
       COALESCE(d.max_drawdown_usd, 0)                                 AS max_drawdown_usd,
       COALESCE(d.max_drawdown_pct, 0)                                 AS max_drawdown_pct,
       a.first_trade_at,
       a.last_trade_at
FROM trading.bots b
LEFT JOIN agg a ON a.bot_id = b.bot_id
LEFT JOIN drawdown d ON d.bot_id = b.bot_id;
CREATE UNIQUE INDEX bot_performance_summary_bot_uniq
    ON analytics.bot_performance_summary (bot_id);
"""


DROP_VIEWS = """
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_performance_summary;
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_daily_performance;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("trading", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(CREATE_DAILY_PERFORMANCE, reverse_sql=DROP_VIEWS),
        migrations.RunSQL(CREATE_PERFORMANCE_SUMMARY, reverse_sql=migrations.RunSQL.noop),
    ]
