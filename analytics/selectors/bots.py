"""One bot's figures: the summary of METRICS.md. (Its realized equity curve: equity.py.)

The summary is one statement over the bot's closed trades, read in exit order (ties broken by
id, as analytics/sql.py does) from the covering index ``trades_bot_closed_curve_idx``. The
database does the sums, the running equity, its peak and the daily returns; Python only turns
the return series' moments into Sharpe, Sortino, CAGR and Calmar.

Over all of a busy bot's trades that statement takes over 100 ms, and it runs for the first
read after any change to the bot's trades, which for a live bot is nearly every read. So the
all-time summary without backtests (the dashboard's and the API's default) is read from the
bot's checkpoint, the same statement's state over the trades that exited before the start of
some UTC day, combined with the trades since (summary_checkpoint.py): the same row to the
digit, from a few rows. A period (``since``, ``until``) or backtests included take the whole
statement.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import caches

from analytics.curve_sql import SUMMARY_CURVE_CTES, SUMMARY_TRADE_COLUMNS, curve_cte
from analytics.selectors.common import (
    TradeScope,
    bot_scope,
    cagr,
    calmar,
    fetch_one,
    ratio,
    sharpe,
    sortino,
    usd,
)
from analytics.selectors.summary_checkpoint import (
    CHECKPOINT_COLUMNS,
    checkpoint_serves,
    checkpoint_summary_sql,
)
from analytics.summary_sql import CHECKPOINT_USABLE
from trading.models import Bot
from trading.redis_breaker import redis_attempt

_SUMMARY_SQL = (
    "WITH "  # noqa: S608 - constant text; values are parameters
    + curve_cte(SUMMARY_TRADE_COLUMNS)
    + """
, agg AS (
    SELECT count(*)::int                                                AS trades_closed,
           (count(*) FILTER (WHERE pnl_usd > 0))::int                   AS wins,
           (count(*) FILTER (WHERE pnl_usd < 0))::int                   AS losses,
           (count(*) FILTER (WHERE pnl_usd = 0))::int                   AS breakeven,
           COALESCE(sum(pnl_usd) FILTER (WHERE pnl_usd > 0), 0)         AS gross_profit_usd,
           COALESCE(-sum(pnl_usd) FILTER (WHERE pnl_usd < 0), 0)        AS gross_loss_usd,
           COALESCE(sum(pnl_usd), 0)                                    AS net_pnl_usd,
           avg(pnl_usd) FILTER (WHERE pnl_usd > 0)                      AS avg_win_usd,
           -avg(pnl_usd) FILTER (WHERE pnl_usd < 0)                     AS avg_loss_usd,
           max(pnl_usd)                                                 AS best_trade_usd,
           min(pnl_usd)                                                 AS worst_trade_usd,
           avg(duration_s)                                              AS avg_duration_s,
           avg(duration_s) FILTER (WHERE pnl_usd > 0)                   AS avg_win_duration_s,
           avg(duration_s) FILTER (WHERE pnl_usd < 0)                   AS avg_loss_duration_s,
           COALESCE(sum(fees_usd), 0)                                   AS fees_usd,
           COALESCE(sum(volume_usd), 0)                                 AS volume_usd,
           COALESCE(max(peak - equity), 0)                              AS max_drawdown_usd,
           min(entry_time)                                              AS first_trade_at,
           max(exit_time)                                               AS last_trade_at
    FROM c
)"""
    + SUMMARY_CURVE_CTES
    + """, rstats AS (
    SELECT count(r)::int AS return_days, avg(r) AS return_mean,
           stddev_samp(r) AS return_stdev, avg(least(r, 0) ^ 2) AS return_downside_sq
    FROM returns
)
SELECT agg.*,
       (SELECT e0 FROM s)                                           AS start_equity_usd,
       COALESCE(trough.pct, 0)                                      AS max_drawdown_pct,
       trough.exit_time                                             AS max_drawdown_trough_at,
       COALESCE(
           (SELECT max(c.exit_time) FROM c
            WHERE (c.exit_time, c.id) <= (trough.exit_time, trough.id) AND c.equity = trough.peak),
           CASE WHEN trough.id IS NOT NULL THEN agg.first_trade_at END
       )                                                            AS max_drawdown_peak_at,
       rstats.*,
       (SELECT count(*)::int FROM trading.trades o WHERE {open})    AS trades_open,
       ver.version                                                  AS trades_version,
       ver.changed_at                                               AS trades_changed_at,
       rep.equity_usd                                               AS reported_equity_usd,
       rep.ts                                                       AS reported_equity_at
FROM agg
CROSS JOIN rstats
LEFT JOIN trough ON true
LEFT JOIN analytics.bot_trade_versions ver ON ver.bot_id = %(bot_id)s
LEFT JOIN LATERAL (
    SELECT ab.equity_usd, ab.ts FROM trading.account_balance ab
    WHERE ab.bot_id = %(bot_id)s {balance_until}
    ORDER BY ab.ts DESC, ab.id DESC
    LIMIT 1
) rep ON true
"""
)

# What a cached summary cannot hold: the version of the bot's trades now, and the last equity
# it reported (account_balance rows do not change the trades' version); and whether the bot's
# summary checkpoint is usable, so a read without one builds it first.
_PROBE_SQL = f"""
SELECT ver.version AS trades_version, ver.changed_at AS trades_changed_at,
       rep.equity_usd AS reported_equity_usd, rep.ts AS reported_equity_at,
       COALESCE({CHECKPOINT_USABLE.format(e0="%(initial)s::numeric")}, false)
           AS checkpoint_usable
FROM (SELECT 1) AS one
LEFT JOIN analytics.bot_trade_versions ver ON ver.bot_id = %(bot_id)s
LEFT JOIN analytics.bot_summary_checkpoints k ON k.bot_id = %(bot_id)s
LEFT JOIN LATERAL (
    SELECT ab.equity_usd, ab.ts FROM trading.account_balance ab
    WHERE ab.bot_id = %(bot_id)s {{balance_until}}
    ORDER BY ab.ts DESC, ab.id DESC
    LIMIT 1
) rep ON true
"""  # noqa: S608 - constant text; values are parameters
_REPORTED = ("reported_equity_usd", "reported_equity_at")
SUMMARY_CACHE_SECONDS = 86400
# A checkpoint cut before today with more trades than this after it is rebuilt after the read
# that found it so (normally the daily refresh task has moved the cut before anyone reads).
CHECKPOINT_REBUILD_LATER_TRADES = 200


def bot_summary(
    *,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    include_backtest: bool = False,
    run_ids: tuple[int, ...] = (),
    entered: tuple[datetime, datetime | None] | None = None,
) -> dict[str, Any]:
    """Every figure of METRICS.md for one bot, over the trades that closed in [since, until);
    only those of ``run_ids`` (analytics.selectors.runs), or entered in ``entered``, when given.

    With ``since``, the curve starts from the equity the bot had then (initial capital plus
    the trades closed before), so drawdown, returns and CAGR are those of the period. Open
    trades are counted as they are now; reported equity is the last account_balance row
    before ``until``.

    The figures are cached (Redis) under the version of the bot's trades
    (analytics.bot_trade_versions, bumped by a trigger in the transaction of every change to
    them): a first statement reads the version and the reported equity; only when no summary
    is cached for that version does a second statement compute it. For the all-time summary
    without backtests, that second statement reads the bot's summary checkpoint and the trades
    since its cut; where the probe found no usable checkpoint, one is built first (about as
    slow as the whole statement, once).
    """
    scope = bot_scope(
        bot=bot,
        since=since,
        until=until,
        include_backtest=include_backtest,
        run_ids=run_ids,
        entered=entered,
    )
    balance_until = "AND ab.ts < %(until)s" if until is not None else ""
    if run_ids:  # the equity the runs reported
        balance_until += " AND ab.run_id = ANY(%(run_ids)s::bigint[])"
    probe = fetch_one(_PROBE_SQL.format(balance_until=balance_until), scope.params)
    key = _cache_key(scope=scope, version=probe["trades_version"], at=probe["trades_changed_at"])
    row = _cache_get(key) if key is not None else None
    if row is None:
        row = _computed_row(bot=bot, scope=scope, probe=probe, balance_until=balance_until)
        # Stored under the version the statement itself read: never newer than its figures.
        stored = _cache_key(scope=scope, version=row["trades_version"], at=row["trades_changed_at"])
        if stored is not None:
            _cache_set(stored, {k: v for k, v in row.items() if k not in _REPORTED})
    else:
        row = {**row, **{name: probe[name] for name in _REPORTED}}
    return summary_from_row(bot=bot, row=row, since=since, until=until, backtest=include_backtest)


def _computed_row(
    *, bot: Bot, scope: TradeScope, probe: dict[str, Any], balance_until: str
) -> dict[str, Any]:
    """The summary statement's row for ``scope``: from the checkpoint where it serves, else
    from all the trades."""
    if checkpoint_serves(scope) and probe["trades_version"] is not None:
        # Imported here: analytics.services imports the selectors.
        from analytics.services.summaries import bot_summary_checkpoint_build, summary_cut

        if not probe["checkpoint_usable"]:
            bot_summary_checkpoint_build(bot=bot)
        row = fetch_one(checkpoint_summary_sql(scope), scope.params)
        usable, later_trades, cut = (row.pop(name) for name in CHECKPOINT_COLUMNS)
        # Checked again on the statement's own snapshot: a trade may have changed since the probe.
        if usable:
            if later_trades > CHECKPOINT_REBUILD_LATER_TRADES and cut < summary_cut():
                bot_summary_checkpoint_build(bot=bot)
            return row
    return full_summary_row(scope=scope, balance_until=balance_until)


def full_summary_row(*, scope: TradeScope, balance_until: str = "") -> dict[str, Any]:
    """The summary statement's row for ``scope``, computed from all its trades."""
    sql = _SUMMARY_SQL.format(
        start=scope.start_equity_sql(),
        closed=scope.closed("t"),
        open=scope.open_trades("o"),
        balance_until=balance_until,
    )
    return fetch_one(sql, scope.params)


def _cache_key(*, scope: TradeScope, version: int | None, at: datetime | None) -> str | None:
    """The cache key of a summary: the bot, its trades' version, and the request's scope."""
    if version is None or at is None:
        return None  # no trade was ever written for the bot: nothing to save
    parts = [scope.bot_id, version, at.isoformat(), scope.params["initial"]]
    parts += [scope.since and scope.since.isoformat(), scope.until and scope.until.isoformat()]
    if scope.sliced:
        parts += [",".join(map(str, scope.run_ids)), scope.entered_from, scope.entered_to]
    return "analytics:bot-summary:1:" + ":".join(str(p) for p in [*parts, scope.include_backtest])


def _cache_get(key: str) -> dict[str, Any] | None:
    """The cached summary row, or None (computed then) when Redis lacks it or is away."""
    found: dict[str, Any] | None = redis_attempt(
        "bot summary cache read", lambda: caches["default"].get(key), None
    )
    return found


def _cache_set(key: str, row: dict[str, Any]) -> None:
    redis_attempt(
        "bot summary cache write",
        lambda: caches["default"].set(key, row, SUMMARY_CACHE_SECONDS),
        None,
    )


def summary_from_row(
    *,
    bot: Bot,
    row: dict[str, Any],
    since: datetime | None,
    until: datetime | None,
    backtest: bool,
) -> dict[str, Any]:
    """The summary from the aggregates of one statement: the ratios SQL does badly, here."""
    n: int = row["trades_closed"]
    wins: int = row["wins"]
    start: Decimal = row["start_equity_usd"]
    equity = start + row["net_pnl_usd"]
    win_rate = wins / n if n else None
    avg_win, avg_loss = row["avg_win_usd"], row["avg_loss_usd"]
    expectancy_ratio = None
    if avg_loss and win_rate is not None:
        expectancy_ratio = (1 + float(avg_win or 0) / float(avg_loss)) * win_rate - 1
    profit_factor = None
    if row["gross_loss_usd"]:
        profit_factor = row["gross_profit_usd"] / row["gross_loss_usd"]
    days = None
    if row["first_trade_at"] is not None:
        span = (row["last_trade_at"] - row["first_trade_at"]).total_seconds() / 86400
        days = max(span, 1.0)
    cagr_value = cagr(start=start, end=equity, days=days) if n else None
    return {
        "bot_id": bot.bot_id,
        "since": since,
        "until": until,
        "include_backtest": backtest,
        "initial_capital_usd": usd(bot.initial_capital_usd),
        "equity_usd": usd(equity),
        "trades_closed": n,
        "trades_open": row["trades_open"],
        "wins": wins,
        "losses": row["losses"],
        "breakeven": row["breakeven"],
        "win_rate": ratio(win_rate),
        "gross_profit_usd": usd(row["gross_profit_usd"]),
        "gross_loss_usd": usd(row["gross_loss_usd"]),
        "net_pnl_usd": usd(row["net_pnl_usd"]),
        "profit_factor": ratio(profit_factor),
        "expectancy_usd": usd(row["net_pnl_usd"] / n) if n else None,
        "expectancy_ratio": ratio(expectancy_ratio),
        "avg_win_usd": usd(avg_win),
        "avg_loss_usd": usd(avg_loss),
        "best_trade_usd": usd(row["best_trade_usd"]),
        "worst_trade_usd": usd(row["worst_trade_usd"]),
        "avg_duration_s": ratio(row["avg_duration_s"]),
        "avg_win_duration_s": ratio(row["avg_win_duration_s"]),
        "avg_loss_duration_s": ratio(row["avg_loss_duration_s"]),
        "fees_usd": usd(row["fees_usd"]),
        "volume_usd": usd(row["volume_usd"]),
        "max_drawdown_usd": usd(row["max_drawdown_usd"]),
        "max_drawdown_pct": ratio(row["max_drawdown_pct"]),
        "max_drawdown_peak_at": row["max_drawdown_peak_at"],
        "max_drawdown_trough_at": row["max_drawdown_trough_at"],
        "sharpe": ratio(
            sharpe(days=row["return_days"], mean=row["return_mean"], stdev=row["return_stdev"])
        ),
        "sortino": ratio(
            sortino(
                days=row["return_days"],
                mean=row["return_mean"],
                downside_sq_mean=row["return_downside_sq"],
            )
        ),
        "cagr": ratio(cagr_value),
        "calmar": ratio(calmar(cagr_value=cagr_value, max_drawdown_pct=row["max_drawdown_pct"])),
        "days": ratio(days),
        "first_trade_at": row["first_trade_at"],
        "last_trade_at": row["last_trade_at"],
        "reported_equity_usd": row["reported_equity_usd"],
        "reported_equity_at": row["reported_equity_at"],
    }
