"""Risk-metrics rows made stale by trades written for past days (trading.RiskMetricsBacklog).

The scheduled rollup redoes yesterday's and today's rows; a trade that closed before yesterday,
or changed a trade that did, leaves the older rows (equity, drawdown, Sharpe) wrong until
someone redoes them. Every trade write marks its bot here, in the same statement as the write,
so the mark commits or rolls back with the trades and no queue or cache can lose it; the
analytics rollup redoes the days and clears the mark.

A write marks the earliest of:
- the exit day of a closed trade written (created or changed), and of what it was before;
- the entry day of a trade written that starts before the bot's first risk_metrics row (the
  bot's chain of rows starts there, so it must start again earlier);
when that day is before yesterday (UTC, by the database's clock). Backtests count for nothing.

Marking costs the statement about 0.7 ms, so ``may_make_stale`` keeps it off the hot path: a
batch whose every trade entered today (a live bot's usual send) cannot mark anything.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from django.db import connection
from django.utils import timezone

# What a trade upsert (an INSERT INTO trading.trades ... ON CONFLICT) returns for
# ``with_backlog_mark``: the row as written, and whether it was created.
TRADE_WRITTEN = (
    "trades.trade_id, (xmax = 0) AS created, trades.source, trades.status, "
    "trades.entry_time, trades.exit_time"
)

# One row, one day (or NULL): the first day {days} makes stale, kept if before yesterday.
# marked_at changes on every mark, even one that leaves since alone: the redo clears a mark only
# if it is still the one it read.
_MARK_SQL = """
INSERT INTO trading.risk_metrics_backlog AS b (bot_id, since, marked_at)
SELECT %(bot_id)s, s.day, clock_timestamp() FROM ({days}) AS s(day)
WHERE s.day < (now() AT TIME ZONE 'UTC')::date - 1
ON CONFLICT (bot_id) DO UPDATE
    SET since = LEAST(b.since, EXCLUDED.since), marked_at = clock_timestamp()
"""

# `trading.trades AS o` is read with the statement's snapshot, which the upsert beside it does
# not change: it is each trade as it was before this write (PostgreSQL, "Data-Modifying
# Statements in WITH").
_STALE_DAY_SQL = """
SELECT (min(LEAST(
    CASE WHEN w.status = 'closed' AND w.source <> 'backtest' THEN w.exit_time END,
    CASE WHEN o.status = 'closed' AND o.source <> 'backtest' THEN o.exit_time END,
    CASE WHEN w.status <> 'cancelled' AND w.source <> 'backtest' AND w.entry_time < first.at
         THEN w.entry_time END
)) AT TIME ZONE 'UTC')::date
FROM written AS w
LEFT JOIN LATERAL (
    -- One index probe per trade written. As a plain join, the planner may read every trade of
    -- the bot and filter by trade_id (it did, for a bot the statistics had not seen yet): a
    -- cost growing with the bot's trades on every send. LIMIT keeps the subquery its own.
    SELECT o.status, o.source, o.exit_time FROM trading.trades AS o
    WHERE o.bot_id = %(bot_id)s AND o.trade_id = w.trade_id
    LIMIT 1
) AS o ON true
CROSS JOIN (SELECT min(r.date)::timestamp AT TIME ZONE 'UTC' AS at
            FROM trading.risk_metrics AS r WHERE r.bot_id = %(bot_id)s) AS first
"""


def may_make_stale(rows: Iterable[dict[str, Any]]) -> bool:
    """Whether writing ``rows`` (trades with an ``entry_time``) could mark anything, decided
    without the database: only a trade entered before today (UTC) can, since its exit, and any
    exit it had before, come after its entry, and the scheduled rollup redoes yesterday and
    today. Today by this process's clock, a day earlier than the database's "before yesterday",
    so a clock a little off either way only errs towards marking. What it cannot see: a
    correction that moves a trade's entry from before yesterday to today (its old exit day is
    then not marked; `manage.py rollup_risk_metrics --since` redoes it)."""
    today = datetime.combine(timezone.now().astimezone(UTC).date(), time(), UTC)
    return any(row["entry_time"] < today for row in rows)


def with_backlog_mark(upsert_sql: str) -> str:
    """``upsert_sql`` (a trade upsert for ``%(bot_id)s`` ending ``RETURNING TRADE_WRITTEN``) as
    one statement that also marks the bot's stale risk_metrics days. It returns one row
    ``(created,)`` per trade written, as the upsert alone would with ``RETURNING (xmax = 0)``."""
    return f"""
WITH written AS ({upsert_sql}),
marked AS ({_MARK_SQL.format(days=_STALE_DAY_SQL)})
SELECT created FROM written
"""  # noqa: S608 - constant text around a constant statement


def risk_metrics_backlog_mark(*, bot_id: str, since: date) -> None:
    """Mark ``bot_id``'s risk_metrics rows stale from ``since`` (nothing if that is yesterday or
    later: the scheduled rollup redoes those). For writers that touch the days some other way
    than a trade upsert (an import's balances and positions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_SQL.format(days="SELECT %(since)s::date"), {"bot_id": bot_id, "since": since}
        )
