"""Checkpoints of the bot summaries (analytics.BotSummaryCheckpoint): built, armed, refreshed.

A bot's all-time summary (analytics.selectors.bots) is one statement over all its closed trades:
for the busiest bot of the benchmark, tens of thousands of rows and over 100 ms. A checkpoint
holds that statement's state over the trades that exited before a cut (a UTC midnight, by
default the start of today), so that a read combines it with only the trades since
(analytics.selectors.summary_checkpoint).

Race safety. One statement computes the state from one snapshot, stores it with the trades
version that snapshot saw, and arms it: it sets analytics.bot_trade_versions' row to say "the
checkpoint of version V; no trade touched since" (``checkpoint_version`` = V,
``earliest_exit_touched`` = NULL), but only if the version is still V. Every change to the
bot's trades bumps the version and lowers ``earliest_exit_touched`` to the earliest closed exit
it touched, in the same upsert and the same transaction (the trigger of migration 0005), and
holds that row's lock until it commits. So when the arming succeeds, no change committed after
the snapshot, and every later change is recorded against the armed version; when it fails (a
change committed meanwhile), the checkpoint is stored but not armed, and readers rebuild it.
A checkpoint row is only ever replaced by one built from a snapshot at least as new.

Building is idempotent: the same cut and version give the same row.
"""

from datetime import UTC, datetime, time

from django.db import connection
from django.utils import timezone

from analytics.curve_sql import SUMMARY_CURVE_CTES, SUMMARY_TRADE_COLUMNS, curve_cte
from analytics.selectors.common import bot_scope
from analytics.summary_sql import FLOAT8_EXACT
from trading.models import Bot

# The state columns, in the order BUILD_SQL's ``state`` CTE selects them.
_STATE_COLUMNS = (
    "trades_closed",
    "wins",
    "losses",
    "breakeven",
    "win_pnl_usd",
    "loss_pnl_usd",
    "net_pnl_usd",
    "fees_usd",
    "volume_usd",
    "best_trade_usd",
    "worst_trade_usd",
    "duration_s_sum",
    "win_duration_s_sum",
    "loss_duration_s_sum",
    "first_trade_at",
    "last_trade_at",
    "equity_usd",
    "peak_usd",
    "peak_at",
    "max_drawdown_usd",
    "trough_trade_id",
    "trough_at",
    "trough_peak_usd",
    "trough_equity_usd",
    "trough_peak_at",
    "daily_returns",
)
_COLUMNS = ("bot_id", "cut", "trades_version", "initial_capital_usd", "built_at", *_STATE_COLUMNS)

# The summary statement's own CTEs (curve_cte and SUMMARY_CURVE_CTES of
# analytics.selectors.bots) over the trades that exited before the cut, stopping short of the
# figures: what it would sum, and the float8 values in the order its aggregates add them.
BUILD_SQL = (
    "WITH ver AS MATERIALIZED ("  # noqa: S608 - constant text; values are parameters
    " SELECT version FROM analytics.bot_trade_versions WHERE bot_id = %(bot_id)s"
    "), "
    + curve_cte(SUMMARY_TRADE_COLUMNS)
    + f"""
, agg AS (
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
           -- avg(float8) adds its inputs one by one from 0, in the order they come: exit order
           {FLOAT8_EXACT}(COALESCE(sum(duration_s ORDER BY exit_time, id), 0))
                                                                        AS duration_s_sum,
           {FLOAT8_EXACT}(COALESCE(sum(duration_s ORDER BY exit_time, id)
                                   FILTER (WHERE pnl_usd > 0), 0))      AS win_duration_s_sum,
           {FLOAT8_EXACT}(COALESCE(sum(duration_s ORDER BY exit_time, id)
                                   FILTER (WHERE pnl_usd < 0), 0))      AS loss_duration_s_sum,
           min(entry_time)                                              AS first_trade_at,
           max(exit_time)                                               AS last_trade_at,
           (SELECT e0 FROM s) + COALESCE(sum(pnl_usd), 0)               AS equity_usd,
           COALESCE(max(peak), (SELECT e0 FROM s))                      AS peak_usd,
           COALESCE(max(peak - equity), 0)                              AS max_drawdown_usd
    FROM c
)"""  # noqa: S608 - FLOAT8_EXACT is a function's name
    + SUMMARY_CURVE_CTES
    + f""", state AS (
    SELECT agg.trades_closed, agg.wins, agg.losses, agg.breakeven, agg.win_pnl_usd,
           agg.loss_pnl_usd, agg.net_pnl_usd, agg.fees_usd, agg.volume_usd, agg.best_trade_usd,
           agg.worst_trade_usd, agg.duration_s_sum, agg.win_duration_s_sum,
           agg.loss_duration_s_sum, agg.first_trade_at, agg.last_trade_at, agg.equity_usd,
           agg.peak_usd,
           (SELECT max(c.exit_time) FROM c WHERE c.equity = agg.peak_usd) AS peak_at,
           agg.max_drawdown_usd,
           trough.id, trough.exit_time, trough.peak, trough.equity,
           (SELECT max(c.exit_time) FROM c
            WHERE (c.exit_time, c.id) <= (trough.exit_time, trough.id)
              AND c.equity = trough.peak) AS trough_peak_at,
           COALESCE((SELECT array_agg({FLOAT8_EXACT}(r) ORDER BY day) FROM returns), '{{}}')
               AS daily_returns
    FROM agg LEFT JOIN trough ON true
), built AS (
    INSERT INTO analytics.bot_summary_checkpoints AS k ({", ".join(_COLUMNS)})
    SELECT %(bot_id)s, %(cut)s, ver.version, s.e0, now(), state.*
    FROM state CROSS JOIN ver CROSS JOIN s
    ON CONFLICT (bot_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[1:])}
    WHERE k.trades_version <= EXCLUDED.trades_version
    RETURNING k.trades_version
)
UPDATE analytics.bot_trade_versions v
SET checkpoint_version = built.trades_version, earliest_exit_touched = NULL
FROM built
WHERE v.bot_id = %(bot_id)s AND v.version = built.trades_version
"""  # noqa: S608 - the interpolations are the column names above
)


def summary_cut(now: datetime | None = None) -> datetime:
    """The default cut of a checkpoint: the start of the current UTC day. Trades closing today
    are left to the read, so the usual late trade of a live bot (closed earlier today, sent
    later) does not invalidate the checkpoint; the next day's refresh takes them in."""
    day = (now or timezone.now()).astimezone(UTC).date()
    return datetime.combine(day, time.min, tzinfo=UTC)


def bot_summary_checkpoint_build(*, bot: Bot, cut: datetime | None = None) -> bool:
    """Build (or rebuild) ``bot``'s summary checkpoint over its closed, non-backtest trades that
    exited before ``cut`` (a UTC midnight; default: the start of today), in one statement, and
    arm it. Returns whether it was armed: False when the bot has never had a trade, or when a
    trade change committed while it was being built (it will be rebuilt on a later read).

    Costs about one full summary statement; readers call it when they find no usable
    checkpoint, and ``bot_summary_checkpoints_refresh`` moves the cut every day.
    """
    cut = cut or summary_cut()
    if cut.astimezone(UTC).timetz() != time.min.replace(tzinfo=UTC):
        raise ValueError(f"a checkpoint's cut is a UTC midnight, not {cut.isoformat()}")
    scope = bot_scope(bot=bot, since=None, until=None, include_backtest=False)
    closed = scope.closed("t") + " AND t.exit_time < %(cut)s"
    sql = BUILD_SQL.replace("{start}", scope.start_equity_sql()).replace("{closed}", closed)
    with connection.cursor() as cursor:
        cursor.execute(sql, {**scope.params, "cut": cut})
        return cursor.rowcount == 1


# Bots with trades whose checkpoint is missing, not armed, touched before its cut, built for
# another initial capital, or cut before today.
_STALE_SQL = """
SELECT v.bot_id
FROM analytics.bot_trade_versions v
JOIN trading.bots b ON b.bot_id = v.bot_id
LEFT JOIN analytics.bot_summary_checkpoints k ON k.bot_id = v.bot_id
WHERE k.bot_id IS NULL
   OR v.checkpoint_version IS DISTINCT FROM k.trades_version
   OR v.earliest_exit_touched < k.cut
   OR k.initial_capital_usd <> b.initial_capital_usd
   OR k.cut < %(cut)s
ORDER BY v.bot_id
"""


def bot_summary_checkpoints_refresh(*, cut: datetime | None = None) -> int:
    """Rebuild every bot's summary checkpoint that does not serve, or is cut before ``cut``
    (default: the start of today), so the day's first reads find one. Returns how many were
    armed. Safe to run twice or beside readers: a build for a checkpoint that holds is a no-op
    in effect, and a build that loses a race is only not armed."""
    cut = cut or summary_cut()
    with connection.cursor() as cursor:
        cursor.execute(_STALE_SQL, {"cut": cut})
        bot_ids = [bot_id for (bot_id,) in cursor.fetchall()]
    armed = 0
    for bot in Bot.objects.filter(bot_id__in=bot_ids).order_by("bot_id"):
        armed += bot_summary_checkpoint_build(bot=bot, cut=cut)
    return armed
