"""The whole fleet: totals, exposure, one-day VaR and one row per bot; its closed trades per
period; the snapshot history.

The summary is two statements, the periods one. Whole past days of realized pnl are read from
the materialized view ``analytics.bot_daily_performance`` up to the last day it holds (the day it
was refreshed), and every trade closed from that day on is read live from trading.trades: a
trade closed today is counted at once, and a stale or never-refreshed view only moves work to
the live part. (A trade that arrives late for a day older than the view's last day waits for
the next refresh.) The VaR reads whole days of the fleet from ``analytics.portfolio_daily_pnl``
(a row a day, refreshed with the daily view) up to that view's own last day, the same way.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from analytics.models import PortfolioSnapshot
from analytics.selectors.common import fetch_all, fetch_one, ratio, usd
from analytics.selectors.periods import PERIODS

VAR_WINDOW_DAYS = 90
VAR_MIN_DAYS = 20


def _cut_of(view: str) -> str:
    """The first day that is read live: the last day the view holds (it may be partial)."""
    return f"""cut AS MATERIALIZED (
    SELECT COALESCE(max(d.day), '-infinity'::date) AS day,
           COALESCE(max(d.day)::timestamp AT TIME ZONE 'UTC', '-infinity') AS at
    FROM {view} d
)"""  # noqa: S608 - view is one of the constant names below


_CUT = _cut_of("analytics.bot_daily_performance")

_BOTS_SQL = f"""
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
         -- The trades since the cut, in two parts split at today: the planner cannot know the
         -- cut, and takes ">= cut.at" alone for a third of the bot's trades (a cost that made
         -- PostgreSQL JIT-compile the statement for seconds); either part is a range it knows.
         + (SELECT COALESCE(sum(t.pnl_usd), 0) FROM trading.trades t
            WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
              AND t.exit_time >= cut.at AND t.exit_time < %(today)s)
         + (SELECT COALESCE(sum(t.pnl_usd), 0) FROM trading.trades t
            WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
              AND t.exit_time >= cut.at AND t.exit_time >= %(today)s)
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
"""  # noqa: S608 - constant text; values are parameters

# The portfolio's daily returns over the trailing window of whole UTC days (today excluded):
# r_d = realized pnl of every bot on day d / the portfolio's realized equity at the end of d-1
# (the bots' initial capital plus every pnl closed before d). Days start at the first trade's
# entry day; days without closed trades are 0.
#
# Whole days come from analytics.portfolio_daily_pnl (a row a day, the fleet's sum; the daily
# view's rows per bot were 365,000 a year at 1,000 bots), up to its own last day, and the trades
# from that day on are read live, as in the bots statement. A live part whose range is empty (the
# view refreshed today) is not looked at: its condition on cut and bounds alone is checked once.
_VAR_SQL = f"""
WITH {_cut_of("analytics.portfolio_daily_pnl")}, first AS (
    SELECT (min(t.entry_time) AT TIME ZONE 'UTC')::date AS day FROM trading.trades t
    WHERE t.status = 'closed' AND t.source <> 'backtest'
), bounds AS MATERIALIZED (
    SELECT b.day, b.day::timestamp AT TIME ZONE 'UTC' AS at
    FROM (SELECT CASE WHEN first.day IS NOT NULL
                      THEN GREATEST(%(window_start)s::date, first.day) END AS day
          FROM first) b
), daily AS (
    SELECT d.day, d.net_pnl_usd AS pnl
    FROM analytics.portfolio_daily_pnl d, cut, bounds
    WHERE d.day >= bounds.day AND d.day < cut.day
    UNION ALL
    -- The live trades bot by bot (one day's sum per bot and day; series adds the bots up): a
    -- range of exit times alone has no index, and without a bot PostgreSQL before 18 (no skip
    -- scan) reads the whole table. So does base below.
    SELECT live.day, live.pnl
    FROM (SELECT GREATEST(cut.at, bounds.at) AS at FROM cut, bounds
          WHERE GREATEST(cut.at, bounds.at) < %(today)s) since
    CROSS JOIN trading.bots b
    CROSS JOIN LATERAL (
        SELECT (t.exit_time AT TIME ZONE 'UTC')::date AS day, sum(t.pnl_usd) AS pnl
        FROM trading.trades t
        WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
          AND t.exit_time >= since.at AND t.exit_time < %(today)s
        GROUP BY 1
    ) live
), base AS MATERIALIZED (
    SELECT (SELECT sum(b.initial_capital_usd) FROM trading.bots b)
         + (SELECT COALESCE(sum(d.net_pnl_usd), 0) FROM analytics.portfolio_daily_pnl d, cut
            WHERE d.day < LEAST(cut.day, bounds.day))
         + (SELECT COALESCE(sum(live.pnl), 0)
            FROM (SELECT cut.at FROM cut WHERE cut.at < bounds.at) since
            CROSS JOIN trading.bots b
            CROSS JOIN LATERAL (
                SELECT sum(t.pnl_usd) AS pnl FROM trading.trades t
                WHERE t.bot_id = b.bot_id AND t.status = 'closed' AND t.source <> 'backtest'
                  AND t.exit_time >= since.at AND t.exit_time < bounds.at
            ) live) AS equity
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
"""  # noqa: S608 - constant text; values are parameters


# Every bot's closed trades per period. The whole UTC days in [since, until) before the view's last
# day come from the view, summed over bots; the trades of the rest of [since, until) (the partial
# days at either end, the view's last day and after) are read live. The equity the first period
# starts from is every bot's initial capital plus every pnl closed before since, read the same
# way; each later period starts from the previous one's close.
_PERFORMANCE_SQL = f"""
WITH {_CUT}, edges AS MATERIALIZED (
    -- The view's days are [lo, hi); pnl before since: its days before `before`, then live.
    SELECT s.lo, s.lo::timestamp AT TIME ZONE 'UTC' AS lo_at,
           s.hi, s.hi::timestamp AT TIME ZONE 'UTC' AS hi_at,
           s.before, s.before::timestamp AT TIME ZONE 'UTC' AS before_at,
           s.since, s.until
    FROM (
        SELECT lo.day AS lo,
               GREATEST(lo.day, LEAST(cut.day, COALESCE(%(until_day)s::date, 'infinity'))) AS hi,
               LEAST(cut.day, COALESCE(%(since_day)s::date, '-infinity')) AS before,
               COALESCE(%(since)s::timestamptz, '-infinity') AS since,
               COALESCE(%(until)s::timestamptz, 'infinity') AS until
        -- The first UTC day that starts at or after since. Worked out here, not in Python, whose
        -- dates end at 9999-12-31 (since=9999-12-31T23:59:59Z has no such day there).
        FROM cut, (SELECT COALESCE(date_trunc('day', %(since)s::timestamptz AT TIME ZONE 'UTC'
                                              + interval '1 day' - interval '1 microsecond')::date,
                                   '-infinity') AS day) lo
    ) s
), closed AS (
    SELECT date_trunc(%(unit)s, d.day::timestamp)::date AS period_start,
           d.trades, d.wins, d.losses, d.net_pnl_usd, d.fees_usd
    FROM analytics.bot_daily_performance d, edges e
    WHERE d.day >= e.lo AND d.day < e.hi
    UNION ALL
    SELECT date_trunc(%(unit)s, t.exit_time AT TIME ZONE 'UTC')::date,
           1, (t.pnl_usd > 0)::int, (t.pnl_usd < 0)::int, t.pnl_usd, t.fees_usd
    FROM edges e, trading.trades t
    WHERE t.status = 'closed' AND t.source <> 'backtest'
      AND t.exit_time >= e.since AND t.exit_time < LEAST(e.lo_at, e.until)
    UNION ALL
    SELECT date_trunc(%(unit)s, t.exit_time AT TIME ZONE 'UTC')::date,
           1, (t.pnl_usd > 0)::int, (t.pnl_usd < 0)::int, t.pnl_usd, t.fees_usd
    FROM edges e, trading.trades t
    WHERE t.status = 'closed' AND t.source <> 'backtest'
      AND t.exit_time >= GREATEST(e.hi_at, e.since) AND t.exit_time < e.until
), p AS (
    SELECT period_start, sum(trades)::int AS trades, sum(wins)::int AS wins,
           sum(losses)::int AS losses, sum(net_pnl_usd) AS net_pnl_usd, sum(fees_usd) AS fees_usd
    FROM closed
    GROUP BY period_start
), base AS MATERIALIZED (
    SELECT (SELECT COALESCE(sum(b.initial_capital_usd), 0) FROM trading.bots b)
         + (SELECT COALESCE(sum(d.net_pnl_usd), 0) FROM analytics.bot_daily_performance d, edges e
            WHERE d.day < e.before)
         + (SELECT COALESCE(sum(t.pnl_usd), 0) FROM trading.trades t, edges e
            WHERE t.status = 'closed' AND t.source <> 'backtest'
              AND t.exit_time >= e.before_at AND t.exit_time < e.since) AS equity
)
SELECT p.*,
       base.equity + COALESCE(sum(p.net_pnl_usd) OVER (
           ORDER BY p.period_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
           AS starting_equity_usd
FROM p CROSS JOIN base
ORDER BY p.period_start
"""  # noqa: S608 - constant text; values are parameters


# VaR at or past this is not a figure (a daily return against a realized equity near zero):
# null, and NUMERIC(38, 8), the snapshot's column, always holds the rest.
VAR_BOUND = Decimal(10) ** 30


def _value_at_risk(quantile: float | None, equity: Decimal) -> Decimal | None:
    """-quantile x equity, 0 where the quantile is not a loss; None where that is VAR_BOUND or
    more (computed with the digits it needs: the default 28 would fail to round it)."""
    if quantile is None or quantile >= 0:
        return Decimal(0)
    with localcontext(prec=80):
        result = usd(Decimal(repr(-quantile)) * equity)
    assert result is not None  # noqa: S101 - usd() keeps a Decimal a Decimal
    return result if abs(result) < VAR_BOUND else None


def portfolio_summary(*, now: datetime | None = None) -> dict[str, Any]:
    """Totals, exposure and one-day historical VaR of every bot together, and one row per bot
    (METRICS.md "Portfolio figures"). Two statements.

    A bot's equity is the last it reported (its latest account_balance row, else the equity
    its heartbeat last sent), or its realized equity where it never reported one.
    """
    now = now or timezone.now()
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    params = {"today": today, "tomorrow": today + timedelta(days=1)}
    bots: list[dict[str, Any]] = []
    totals = {
        name: Decimal(0)
        for name in (
            "total_equity_usd",
            "total_balance_usd",
            "unrealized_pnl_usd",
            "realized_pnl_today_usd",
            "long_exposure_usd",
            "short_exposure_usd",
        )
    }
    open_positions = active_bots = 0
    for row in fetch_all(_BOTS_SQL, params):
        reported = row["balance_equity_usd"]
        if reported is None:
            reported = row["current_equity_usd"]
        if reported is not None:
            equity, source = reported, "reported"
        else:
            equity, source = row["initial_capital_usd"] + row["realized_pnl_usd"], "realized"
        balance = row["balance_usd"] if row["balance_usd"] is not None else equity
        exposure = row["long_exposure_usd"] + row["short_exposure_usd"]
        heartbeat = row["last_heartbeat_at"]
        totals["total_equity_usd"] += equity
        totals["total_balance_usd"] += balance
        totals["unrealized_pnl_usd"] += row["unrealized_pnl_usd"]
        totals["realized_pnl_today_usd"] += row["pnl_today_usd"]
        totals["long_exposure_usd"] += row["long_exposure_usd"]
        totals["short_exposure_usd"] += row["short_exposure_usd"]
        open_positions += row["open_positions"]
        active_bots += row["status"] == "active"
        bots.append(
            {
                "bot_id": row["bot_id"],
                "name": row["name"],
                "status": row["status"],
                "mode": row["mode"],
                "equity_usd": usd(equity),
                "equity_source": source,
                "pnl_today_usd": usd(row["pnl_today_usd"]),
                "open_positions": row["open_positions"],
                "exposure_usd": usd(exposure),
                "last_heartbeat_at": heartbeat,
                "heartbeat_age_s": (
                    ratio((now - heartbeat).total_seconds()) if heartbeat is not None else None
                ),
            }
        )
    var = portfolio_var(today=today.date())
    equity = totals["total_equity_usd"]
    enough = var["days"] >= VAR_MIN_DAYS
    long_, short = totals["long_exposure_usd"], totals["short_exposure_usd"]
    return {
        "as_of": now,
        **{name: usd(value) for name, value in totals.items()},
        "gross_exposure_usd": usd(long_ + short),
        "net_exposure_usd": usd(long_ - short),
        "open_positions": open_positions,
        "active_bots": active_bots,
        "var_95_usd": _value_at_risk(var["q95"], equity) if enough else None,
        "var_99_usd": _value_at_risk(var["q99"], equity) if enough else None,
        "var_days": var["days"],
        "bots": bots,
    }


def portfolio_var(*, today: date) -> dict[str, Any]:
    """How many daily returns the VaR window holds, and their 5% and 1% quantiles (linear
    interpolation, as numpy.quantile). One statement."""
    return fetch_one(
        _VAR_SQL,
        {
            "window_start": today - timedelta(days=VAR_WINDOW_DAYS),
            "yesterday": today - timedelta(days=1),
            "today": datetime.combine(today, time(), tzinfo=UTC),
        },
    )


def portfolio_performance(
    *, period: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Every bot's closed trades (backtests left out) per UTC day, ISO week (Monday) or calendar
    month of exit in [since, until), oldest first; only periods with a closed trade. One
    statement.

    trades, wins, losses, net_pnl_usd and fees_usd are the sums over bots of what
    ``bot_performance`` gives each bot for the period. starting_equity_usd is the portfolio's
    realized equity when the period starts (at ``since`` for a first period that ``since`` cuts):
    the initial capital of every bot, traded in the period or not, plus every pnl closed before;
    equity_close_usd = starting_equity_usd + net_pnl_usd; return_pct = net_pnl_usd /
    starting_equity_usd x 100 (null unless the start is positive).
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    params = {
        "unit": PERIODS[period],
        "since": since,
        "until": until,
        # The view's days run to the day until falls in (excluded); pnl before since: days
        # before its day.
        "until_day": None if until is None else until.astimezone(UTC).date(),
        "since_day": None if since is None else since.astimezone(UTC).date(),
    }
    rows = []
    for row in fetch_all(_PERFORMANCE_SQL, params):
        start, net = row["starting_equity_usd"], row["net_pnl_usd"]
        rows.append(
            {
                "period_start": row["period_start"],
                "trades": row["trades"],
                "wins": row["wins"],
                "losses": row["losses"],
                "net_pnl_usd": usd(net),
                "fees_usd": usd(row["fees_usd"]),
                "starting_equity_usd": usd(start),
                "equity_close_usd": usd(start + net),
                "return_pct": ratio(net / start * 100) if start > 0 else None,
            }
        )
    return rows


def portfolio_snapshot_list(
    *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[PortfolioSnapshot]:
    """Portfolio snapshots with ts in [since, until), newest first."""
    snapshots = PortfolioSnapshot.objects.all()
    if since is not None:
        snapshots = snapshots.filter(ts__gte=since)
    if until is not None:
        snapshots = snapshots.filter(ts__lt=until)
    return snapshots.order_by("-ts", "-id")
