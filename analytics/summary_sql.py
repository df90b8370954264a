"""SQL of the bot summary checkpoints' read: a database function (created by migration 0005).

A bot's all-time summary from its checkpoint (analytics.BotSummaryCheckpoint) and the trades
that exited since the checkpoint's cut: one statement, which answers the same row, column for
column and digit for digit, as the summary statement of analytics.selectors.bots over all the
trades. The checkpoint is built by analytics.services.summaries.

How each figure continues from the checkpoint (``cp``) over the later trades, in exit order:
- counts, sums, best and worst, first and last times: added up, or the larger / smaller;
- averages of money: the combined sum over the combined count, the division avg() does;
- averages of durations: avg(float8) adds its inputs in order from 0, so the float8 sum is
  continued from the checkpoint's, trade by trade, and divided by the count as avg() does;
- the curve: the later trades' equity starts from the checkpoint's, their running peak from its
  peak; the deepest point (by percentage, ties to the earliest) is the checkpoint's unless a
  later one is strictly deeper; the peak it fell from was last reached at a later trade, or
  when the checkpoint last stood at that peak, or (as the statement says) at the first trade;
- the daily returns: the checkpoint's days, one float8 each; any days from an earlier first
  entry (a later trade opened before every earlier one) with no pnl; then the days after the
  checkpoint's last one to the last exit, zeros included, over the equity at each day's start.
  The return statistics are taken over that whole series in day order, as the statement does.

The checkpoint is cut at a UTC midnight, so its days and the later days never share a day.
The statement also reports whether the checkpoint is usable (``checkpoint_usable``: armed at
its version, no trade that exited before its cut touched since, the same initial capital),
read from the same snapshot as the trades; when it is not, the other figures mean nothing.

Why a function: the statement is long, and planning it took longer (about 1.5 ms) than running
it over a checkpoint and a day of trades; the plan of a PL/pgSQL function's query is cached in
each database session, so a read pays for one plan per connection (``plan_cache_mode`` is
pinned to the generic plan, which does not depend on the bot). A change to it is a migration
that replaces the function, as for analytics.bot_drawdown. STABLE: its query reads the snapshot
of the statement that calls it, so the checkpoint, the versions row and the trades are read
from one snapshot.
"""

# Usable: the checkpoint ``k`` of ``ver`` (analytics.bot_trade_versions), built for initial
# capital ``e0``: armed at its version, and no closed trade that exited before its cut touched
# since. Also read by the version probe (analytics.selectors.bots), so a read knows beforehand.
CHECKPOINT_USABLE = """(k.trades_version = ver.checkpoint_version
    AND (ver.earliest_exit_touched IS NULL OR ver.earliest_exit_touched >= k.cut)
    AND k.initial_capital_usd = {e0})"""

# A float8 as the exact numeric that reads back (``::float8``) as the same float8: its shortest
# round-trip text, which PostgreSQL writes while extra_float_digits is at least 1 (the default;
# set here so that no session setting can shorten it). float8::numeric would keep 15 digits.
FLOAT8_EXACT = "analytics.float8_exact"
CREATE_FLOAT8_EXACT = f"""
CREATE OR REPLACE FUNCTION {FLOAT8_EXACT}(value float8) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET extra_float_digits = 1
AS $fn$ SELECT value::text::numeric $fn$;
"""
DROP_FLOAT8_EXACT = f"DROP FUNCTION IF EXISTS {FLOAT8_EXACT}(float8);"

CHECKPOINT_SUMMARY_FUNCTION = "analytics.bot_summary_from_checkpoint"

CREATE_CHECKPOINT_SUMMARY = f"""
CREATE OR REPLACE FUNCTION {CHECKPOINT_SUMMARY_FUNCTION}(p_bot_id text, p_initial numeric)
RETURNS TABLE (
    checkpoint_usable boolean, later_trades int, checkpoint_cut timestamptz,
    trades_closed int, wins int, losses int, breakeven int,
    gross_profit_usd numeric, gross_loss_usd numeric, net_pnl_usd numeric,
    avg_win_usd numeric, avg_loss_usd numeric, best_trade_usd numeric, worst_trade_usd numeric,
    avg_duration_s float8, avg_win_duration_s float8, avg_loss_duration_s float8,
    fees_usd numeric, volume_usd numeric, max_drawdown_usd numeric,
    first_trade_at timestamptz, last_trade_at timestamptz, start_equity_usd numeric,
    max_drawdown_pct numeric, max_drawdown_trough_at timestamptz, max_drawdown_peak_at timestamptz,
    return_days int, return_mean float8, return_stdev float8, return_downside_sq float8,
    trades_open int, trades_version bigint, trades_changed_at timestamptz,
    reported_equity_usd numeric, reported_equity_at timestamptz
) LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH s AS MATERIALIZED (SELECT p_initial::numeric AS e0
    ), cp AS MATERIALIZED (
        SELECT k.*, {CHECKPOINT_USABLE.format(e0="s.e0")} AS usable
        FROM analytics.bot_summary_checkpoints k
        JOIN analytics.bot_trade_versions ver ON ver.bot_id = k.bot_id
        CROSS JOIN s
        WHERE k.bot_id = p_bot_id
    ), t AS MATERIALIZED (
        SELECT t.id, t.pnl_usd, t.exit_time, t.fees_usd, t.quantity * t.entry_price AS volume_usd,
               t.entry_time, date_part('epoch', t.exit_time - t.entry_time) AS duration_s,
               cp.equity_usd + sum(t.pnl_usd) OVER w AS equity
        FROM trading.trades t CROSS JOIN cp
        WHERE t.bot_id = p_bot_id AND t.status = 'closed' AND t.source <> 'backtest'
          AND cp.usable AND t.exit_time >= (SELECT cut FROM cp)
        WINDOW w AS (ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING)
    ), c AS MATERIALIZED (
        SELECT t.*, GREATEST(cp.peak_usd, max(t.equity) OVER w) AS peak
        FROM t CROSS JOIN cp
        WINDOW w AS (ORDER BY t.exit_time, t.id ROWS UNBOUNDED PRECEDING)
    ), later AS (
        SELECT count(*)::int                                                AS trades_closed,
               (count(*) FILTER (WHERE pnl_usd > 0))::int                   AS wins,
               (count(*) FILTER (WHERE pnl_usd < 0))::int                   AS losses,
               (count(*) FILTER (WHERE pnl_usd = 0))::int                   AS breakeven,
               COALESCE(sum(pnl_usd) FILTER (WHERE pnl_usd > 0), 0)         AS win_pnl_usd,
               COALESCE(sum(pnl_usd) FILTER (WHERE pnl_usd < 0), 0)         AS loss_pnl_usd,
               COALESCE(sum(pnl_usd), 0)                                    AS net_pnl_usd,
               COALESCE(sum(fees_usd), 0)                                   AS fees_usd,
               COALESCE(sum(volume_usd), 0)                                 AS volume_usd,
               max(pnl_usd)                                                 AS best_trade_usd,
               min(pnl_usd)                                                 AS worst_trade_usd,
               min(entry_time)                                              AS first_trade_at,
               max(exit_time)                                               AS last_trade_at,
               max(peak - equity)                                           AS max_drawdown_usd
        FROM c
    ), durations AS (
        -- Each sum starts from the checkpoint's (o = 0), then adds the later trades in exit order.
        SELECT sum(d.v ORDER BY d.o, d.exit_time, d.id) FILTER (WHERE d.every) AS duration_s_sum,
               sum(d.v ORDER BY d.o, d.exit_time, d.id) FILTER (WHERE d.win) AS win_duration_s_sum,
               sum(d.v ORDER BY d.o, d.exit_time, d.id) FILTER (WHERE d.loss) AS loss_duration_s_sum
        FROM (
            SELECT 0 AS o, NULL::timestamptz AS exit_time, NULL::bigint AS id, seed.*
            FROM cp CROSS JOIN LATERAL (VALUES
                (cp.duration_s_sum::float8, true, false, false),
                (cp.win_duration_s_sum::float8, false, true, false),
                (cp.loss_duration_s_sum::float8, false, false, true)
            ) AS seed(v, every, win, loss)
            UNION ALL
            SELECT 1, exit_time, id, duration_s, true, pnl_usd > 0, pnl_usd < 0 FROM c
        ) d
    ), span AS (
        SELECT LEAST(cp.first_trade_at, later.first_trade_at)              AS first_trade_at,
               GREATEST(cp.last_trade_at, later.last_trade_at)             AS last_trade_at,
               (cp.first_trade_at AT TIME ZONE 'UTC')::date                AS cp_first_day,
               (cp.last_trade_at AT TIME ZONE 'UTC')::date                 AS cp_last_day
        FROM cp CROSS JOIN later
    ), daily AS (
        SELECT (exit_time AT TIME ZONE 'UTC')::date AS day, sum(pnl_usd) AS pnl
        FROM t
        GROUP BY 1
    ), later_series AS (
        SELECT g.day, COALESCE(daily.pnl, 0) AS pnl
        FROM span
        CROSS JOIN LATERAL generate_series(
            COALESCE(span.cp_last_day + 1, (span.first_trade_at AT TIME ZONE 'UTC')::date),
            (span.last_trade_at AT TIME ZONE 'UTC')::date,
            interval '1 day'
        ) AS g(day)
        LEFT JOIN daily ON daily.day = g.day::date
    ), returns AS (
        SELECT g.day::date AS day, (0::numeric / NULLIF(s.e0, 0))::float8 AS r
        FROM span CROSS JOIN s
        CROSS JOIN LATERAL generate_series(
            (span.first_trade_at AT TIME ZONE 'UTC')::date, span.cp_first_day - 1, interval '1 day'
        ) AS g(day)
        UNION ALL
        SELECT span.cp_first_day + (u.n - 1)::int, u.r::float8
        FROM span CROSS JOIN cp
        CROSS JOIN LATERAL unnest(cp.daily_returns) WITH ORDINALITY AS u(r, n)
        UNION ALL
        SELECT ls.day::date,
               (ls.pnl / NULLIF(cp.equity_usd + COALESCE(sum(ls.pnl) OVER (
                   ORDER BY ls.day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)
               )::float8
        FROM later_series ls CROSS JOIN cp
    ), rstats AS (
        SELECT count(r)::int AS return_days, avg(r ORDER BY day) AS return_mean,
               stddev_samp(r ORDER BY day) AS return_stdev,
               avg(least(r, 0) ^ 2 ORDER BY day) AS return_downside_sq
        FROM returns
    ), later_trough AS (
        SELECT exit_time, id, peak, equity, (peak - equity)::float8 / peak::float8 AS depth
        FROM c
        WHERE equity < peak
        ORDER BY (peak - equity)::float8 / peak::float8 DESC, exit_time, id
        LIMIT 1
    ), trough AS (
        SELECT * FROM (
            SELECT 0 AS o, cp.trough_at AS exit_time, cp.trough_trade_id AS id,
                   cp.trough_peak_usd AS peak, cp.trough_equity_usd AS equity,
                   (cp.trough_peak_usd - cp.trough_equity_usd)::float8
                       / cp.trough_peak_usd::float8 AS depth,
                   cp.trough_peak_at AS peak_at
            FROM cp
            WHERE cp.trough_trade_id IS NOT NULL
            UNION ALL
            SELECT 1, lt.exit_time, lt.id, lt.peak, lt.equity, lt.depth,
                   COALESCE(
                       (SELECT max(c.exit_time) FROM c
                        WHERE (c.exit_time, c.id) <= (lt.exit_time, lt.id) AND c.equity = lt.peak),
                       CASE WHEN lt.peak = cp.peak_usd THEN cp.peak_at END
                   )
            FROM later_trough lt CROSS JOIN cp
        ) candidates
        ORDER BY depth DESC, o
        LIMIT 1
    )
    SELECT COALESCE(cp.usable, false)                                   AS checkpoint_usable,
           later.trades_closed                                          AS later_trades,
           cp.cut                                                       AS checkpoint_cut,
           cp.trades_closed + later.trades_closed                       AS trades_closed,
           cp.wins + later.wins                                         AS wins,
           cp.losses + later.losses                                     AS losses,
           cp.breakeven + later.breakeven                               AS breakeven,
           cp.win_pnl_usd + later.win_pnl_usd                           AS gross_profit_usd,
           -(cp.loss_pnl_usd + later.loss_pnl_usd)                      AS gross_loss_usd,
           cp.net_pnl_usd + later.net_pnl_usd                           AS net_pnl_usd,
           (cp.win_pnl_usd + later.win_pnl_usd)
               / NULLIF(cp.wins + later.wins, 0)::numeric               AS avg_win_usd,
           -((cp.loss_pnl_usd + later.loss_pnl_usd)
               / NULLIF(cp.losses + later.losses, 0)::numeric)          AS avg_loss_usd,
           GREATEST(cp.best_trade_usd, later.best_trade_usd)            AS best_trade_usd,
           LEAST(cp.worst_trade_usd, later.worst_trade_usd)             AS worst_trade_usd,
           durations.duration_s_sum
               / NULLIF(cp.trades_closed + later.trades_closed, 0)::float8 AS avg_duration_s,
           durations.win_duration_s_sum
               / NULLIF(cp.wins + later.wins, 0)::float8                AS avg_win_duration_s,
           durations.loss_duration_s_sum
               / NULLIF(cp.losses + later.losses, 0)::float8            AS avg_loss_duration_s,
           cp.fees_usd + later.fees_usd                                 AS fees_usd,
           cp.volume_usd + later.volume_usd                             AS volume_usd,
           GREATEST(cp.max_drawdown_usd, later.max_drawdown_usd)        AS max_drawdown_usd,
           span.first_trade_at,
           span.last_trade_at,
           s.e0                                                         AS start_equity_usd,
           COALESCE((trough.peak - trough.equity) / trough.peak * 100, 0) AS max_drawdown_pct,
           trough.exit_time                                             AS max_drawdown_trough_at,
           COALESCE(
               trough.peak_at, CASE WHEN trough.id IS NOT NULL THEN span.first_trade_at END
           )                                                            AS max_drawdown_peak_at,
           rstats.*,
           (SELECT count(*)::int FROM trading.trades o
            WHERE o.bot_id = p_bot_id AND o.status = 'open' AND o.source <> 'backtest')
                                                                        AS trades_open,
           ver.version                                                  AS trades_version,
           ver.changed_at                                               AS trades_changed_at,
           rep.equity_usd                                               AS reported_equity_usd,
           rep.ts                                                       AS reported_equity_at
    FROM s
    LEFT JOIN cp ON true
    CROSS JOIN later
    CROSS JOIN durations
    LEFT JOIN span ON true
    CROSS JOIN rstats
    LEFT JOIN trough ON true
    LEFT JOIN analytics.bot_trade_versions ver ON ver.bot_id = p_bot_id
    LEFT JOIN LATERAL (
        SELECT ab.equity_usd, ab.ts FROM trading.account_balance ab
        WHERE ab.bot_id = p_bot_id
        ORDER BY ab.ts DESC, ab.id DESC
        LIMIT 1
    ) rep ON true;
END
$fn$;
"""  # noqa: S608 - constant text; the values are the function's parameters

DROP_CHECKPOINT_SUMMARY = f"DROP FUNCTION IF EXISTS {CHECKPOINT_SUMMARY_FUNCTION}(text, numeric);"
