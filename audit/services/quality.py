"""The data-quality checks. Each finding is a system event (component ``data_quality``, event
type naming the check, details holding the keys that find the rows); each run is recorded.

The checks, each one set-based statement over a bounded range, so a run stays in tens of
milliseconds at 5,000,000 candles and 1,000,000 trades:

- ``candle_gap``: a hole in a market's one-minute candles, over the last ``CANDLE_WINDOW``
  (24 hours) of each (symbol, exchange): two consecutive candles more than a minute apart
  (``lead()``). The time after a market's last candle is not a gap (the feed may simply be
  late), and a hole that straddles the window's start is seen only while it is inside it.
- ``orphaned_link``: a row linked to another bot's row: an order's trade or position, a trade's
  position, a signal's trade (the foreign keys cannot say "of the same bot").
- ``executed_signal_without_trade``: a signal marked executed with no trade, older than
  ``SIGNAL_GRACE`` (the bot links the trade a moment after it opens it).
- ``fill_quantity_mismatch``: an order whose fills add up to another quantity than its
  filled_quantity. Orders without fills are left out: not every bot reports fills.
- ``duplicate_trade``: trades of one bot with the same symbol, side, quantity and entry_time
  to the second under different trade_ids (and usually different sources): the same trade sent
  twice, by sources that keep its time to different precisions (a legacy table's whole seconds,
  a bot's milliseconds).
- ``position_mismatch``: a position whose quantity (0 once closed) is not the net quantity of
  its open trades (same side adds, the other subtracts). Positions with no linked trade at all
  are left out: linking trades to positions is optional.

Rows are looked at over the last ``ROW_WINDOW`` (7 days: orders by created_at, trades by
entry_time, signals by generated_at); positions and open trades whatever their age. Each check
reports at most ``MAX_FINDINGS`` rows per run (the run record says when it was cut).

A run records itself as a ``data_quality_run`` event listing the ids of every finding it saw,
so "the latest findings" are those of the latest run. A finding identical (same check, same
details) to one the previous run saw is not written again: the new run lists the earlier
event. A finding that went away and came back is written anew.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Severity, SystemEvent
from audit.selectors import DATA_QUALITY_COMPONENT, DATA_QUALITY_RUN, data_quality_latest
from audit.services.records import json_safe
from trading.db import advisory_lock_key

COMPONENT = DATA_QUALITY_COMPONENT
RUN_EVENT = DATA_QUALITY_RUN
CANDLE_WINDOW = timedelta(hours=24)
ROW_WINDOW = timedelta(days=7)
SIGNAL_GRACE = timedelta(minutes=15)
MAX_FINDINGS = 500


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    message: str
    details: dict[str, Any]
    bot_id: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    severity: Severity
    sql: str

    def run(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, {**params, "limit": MAX_FINDINGS + 1})
            columns = [c.name for c in cursor.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


CANDLE_GAP = Check(
    "candle_gap",
    Severity.WARNING,
    """
    SELECT symbol, exchange, ts AS last_candle_before, next_ts AS first_candle_after,
           ceil(EXTRACT(EPOCH FROM next_ts - ts) / 60)::bigint - 1 AS missing_candles
    FROM (
        SELECT symbol, exchange, ts, lead(ts) OVER (PARTITION BY symbol, exchange ORDER BY ts)
            AS next_ts
        FROM trading.market_data
        WHERE timeframe = '1m' AND ts >= %(candles_since)s AND ts <= %(now)s
    ) c
    WHERE next_ts > ts + interval '1 minute'
    ORDER BY symbol, exchange, ts
    LIMIT %(limit)s
    """,
)

ORPHANED_LINK = Check(
    "orphaned_link",
    Severity.ERROR,
    """
    -- Each table's recent rows by its time index first (MATERIALIZED), then each link by its
    -- primary key (OFFSET 0 keeps the planner from hashing a whole table to find them).
    WITH orders AS MATERIALIZED (
        SELECT id, bot_id, trade_id, position_id FROM trading.orders
        WHERE created_at >= %(rows_since)s
    ), trades AS MATERIALIZED (
        SELECT id, bot_id, position_id FROM trading.trades
        WHERE entry_time >= %(rows_since)s AND position_id IS NOT NULL
    ), signals AS MATERIALIZED (
        SELECT id, bot_id, trade_id FROM trading.signals
        WHERE generated_at >= %(rows_since)s AND trade_id IS NOT NULL
    )
    SELECT * FROM (
        SELECT 'orders' AS "table", o.id, o.bot_id, 'trade' AS link, t.id AS linked_id,
               t.bot_id AS linked_bot_id
        FROM orders o CROSS JOIN LATERAL (
            SELECT id, bot_id FROM trading.trades WHERE id = o.trade_id OFFSET 0
        ) t
        WHERE t.bot_id <> o.bot_id
        UNION ALL
        SELECT 'orders', o.id, o.bot_id, 'position', p.id, p.bot_id
        FROM orders o JOIN trading.positions p ON p.id = o.position_id
        WHERE p.bot_id <> o.bot_id
        UNION ALL
        SELECT 'trades', t.id, t.bot_id, 'position', p.id, p.bot_id
        FROM trades t JOIN trading.positions p ON p.id = t.position_id
        WHERE p.bot_id <> t.bot_id
        UNION ALL
        SELECT 'signals', s.id, s.bot_id, 'trade', t.id, t.bot_id
        FROM signals s CROSS JOIN LATERAL (
            SELECT id, bot_id FROM trading.trades WHERE id = s.trade_id OFFSET 0
        ) t
        WHERE t.bot_id <> s.bot_id
    ) links
    ORDER BY "table", id, link
    LIMIT %(limit)s
    """,
)

EXECUTED_SIGNAL_WITHOUT_TRADE = Check(
    "executed_signal_without_trade",
    Severity.WARNING,
    """
    SELECT s.id AS signal_id, s.bot_id, s.symbol, s.signal_type, s.generated_at
    FROM trading.signals s
    WHERE s.executed AND s.trade_id IS NULL
      AND s.generated_at >= %(rows_since)s AND s.generated_at < %(signals_before)s
    ORDER BY s.id
    LIMIT %(limit)s
    """,
)

FILL_QUANTITY_MISMATCH = Check(
    "fill_quantity_mismatch",
    Severity.ERROR,
    """
    WITH orders AS MATERIALIZED (
        SELECT id, bot_id, client_order_id, filled_quantity FROM trading.orders
        WHERE created_at >= %(rows_since)s
    )
    SELECT o.id AS order_id, o.bot_id, o.client_order_id, o.filled_quantity,
           f.quantity AS fills_quantity, f.fills
    FROM orders o
    CROSS JOIN LATERAL (
        SELECT sum(quantity) AS quantity, count(*) AS fills
        FROM trading.order_fills WHERE order_id = o.id
    ) f
    WHERE f.fills > 0 AND f.quantity <> o.filled_quantity
    ORDER BY o.id
    LIMIT %(limit)s
    """,
)

DUPLICATE_TRADE = Check(
    "duplicate_trade",
    Severity.WARNING,
    """
    SELECT bot_id, symbol, side, date_trunc('second', entry_time) AS entry_time, quantity,
           array_agg(id ORDER BY id) AS ids,
           array_agg(trade_id ORDER BY id) AS trade_ids,
           array_agg(source ORDER BY id) AS sources
    FROM trading.trades
    WHERE entry_time >= %(rows_since)s AND entry_time <= %(now)s AND status <> 'cancelled'
    GROUP BY bot_id, symbol, side, date_trunc('second', entry_time), quantity
    HAVING count(*) > 1
    ORDER BY bot_id, entry_time, symbol, side, quantity
    LIMIT %(limit)s
    """,
)

POSITION_MISMATCH = Check(
    "position_mismatch",
    Severity.ERROR,
    """
    WITH candidates AS (
        SELECT id FROM trading.positions WHERE status <> 'closed'
        UNION
        SELECT position_id FROM trading.trades WHERE status = 'open' AND position_id IS NOT NULL
    ), net AS (
        SELECT p.id AS position_id, p.bot_id, p.symbol, p.exchange, p.side, p.status,
               CASE WHEN p.status = 'closed' THEN 0 ELSE p.quantity END AS quantity,
               COALESCE(sum(CASE WHEN t.side = p.side THEN t.quantity ELSE -t.quantity END)
                   FILTER (WHERE t.status = 'open'), 0) AS open_trades_quantity,
               COALESCE(array_agg(t.id ORDER BY t.id) FILTER (WHERE t.status = 'open'), '{}')
                   AS open_trade_ids,
               count(t.id) AS linked_trades
        FROM candidates c
        JOIN trading.positions p ON p.id = c.id
        LEFT JOIN trading.trades t ON t.position_id = p.id
        GROUP BY p.id
    )
    SELECT position_id, bot_id, symbol, exchange, side, status, quantity, open_trades_quantity,
           open_trade_ids
    FROM net
    WHERE linked_trades > 0 AND open_trades_quantity <> quantity
    ORDER BY position_id
    LIMIT %(limit)s
    """,
)

CHECKS = (
    CANDLE_GAP,
    ORPHANED_LINK,
    EXECUTED_SIGNAL_WITHOUT_TRADE,
    FILL_QUANTITY_MISMATCH,
    DUPLICATE_TRADE,
    POSITION_MISMATCH,
)


def _message(check: str, row: dict[str, Any]) -> str:
    if check == "candle_gap":
        return (
            f"{row['symbol']}@{row['exchange']} 1m: {row['missing_candles']} candle(s) missing "
            f"between {row['last_candle_before']:%Y-%m-%d %H:%M} and "
            f"{row['first_candle_after']:%Y-%m-%d %H:%M} UTC"
        )
    if check == "orphaned_link":
        return (
            f"{row['table']} {row['id']} of {row['bot_id']} links {row['link']} "
            f"{row['linked_id']} of {row['linked_bot_id']}"
        )
    if check == "executed_signal_without_trade":
        return f"signal {row['signal_id']} of {row['bot_id']} is marked executed but has no trade"
    if check == "fill_quantity_mismatch":
        return (
            f"order {row['client_order_id']} of {row['bot_id']}: filled_quantity "
            f"{row['filled_quantity']} but its {row['fills']} fill(s) add up to "
            f"{row['fills_quantity']}"
        )
    if check == "duplicate_trade":
        return (
            f"{len(row['ids'])} trades of {row['bot_id']} share {row['side']} {row['quantity']} "
            f"{row['symbol']} entered at {row['entry_time']:%Y-%m-%d %H:%M:%S}: "
            f"{', '.join(row['trade_ids'])}"
        )
    return (
        f"position {row['position_id']} of {row['bot_id']} ({row['status']}) holds "
        f"{row['quantity']} but its open trades net {row['open_trades_quantity']}"
    )


def _findings(*, now: datetime) -> tuple[list[Finding], dict[str, int], list[str]]:
    params = {
        "now": now,
        "candles_since": now - CANDLE_WINDOW,
        "rows_since": now - ROW_WINDOW,
        "signals_before": now - SIGNAL_GRACE,
    }
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    truncated: list[str] = []
    for check in CHECKS:
        rows = check.run(params)
        if len(rows) > MAX_FINDINGS:
            truncated.append(check.name)
            rows = rows[:MAX_FINDINGS]
        counts[check.name] = len(rows)
        for row in rows:
            details = {"check": check.name, **row}
            if check.name == "candle_gap":
                details["timeframe"] = "1m"
                details["gap_start"] = row["last_candle_before"] + timedelta(minutes=1)
                details["gap_end"] = row["first_candle_after"] - timedelta(minutes=1)
            findings.append(
                Finding(
                    check=check.name,
                    severity=check.severity,
                    message=_message(check.name, row),
                    details=json_safe(details),
                    bot_id=row.get("bot_id"),
                )
            )
    return findings, counts, truncated


@transaction.atomic
def data_quality_check(*, now: datetime | None = None) -> list[SystemEvent]:
    """Run every check; write a system event per finding not already seen by the previous run,
    and the run's record. Returns the finding events it created."""
    now = now or timezone.now()
    with connection.cursor() as cursor:  # two concurrent runs would both write the same finding
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)",
            [advisory_lock_key("audit.services.quality.data_quality_check")],
        )
    findings, counts, truncated = _findings(now=now)
    seen = {(e.event_type, _frozen(e.details)): e for e in data_quality_latest().findings}

    events: list[SystemEvent] = []
    for finding in findings:
        earlier = seen.get((finding.check, _frozen(finding.details)))
        events.append(
            earlier
            or SystemEvent(
                ts=now,
                bot_id=finding.bot_id,
                component=COMPONENT,
                event_type=finding.check,
                severity=finding.severity,
                message=finding.message,
                details=finding.details,
            )
        )
    created = SystemEvent.objects.bulk_create([e for e in events if e.pk is None])
    finding_ids = [e.pk for e in events]

    total = len(finding_ids)
    SystemEvent.objects.create(
        ts=now,
        component=COMPONENT,
        event_type=RUN_EVENT,
        severity=Severity.WARNING if total else Severity.INFO,
        message=f"data quality: {total} finding(s), {len(created)} new",
        details=json_safe(
            {
                "checked_at": now,
                "candle_window_s": int(CANDLE_WINDOW.total_seconds()),
                "row_window_s": int(ROW_WINDOW.total_seconds()),
                "counts": counts,
                "truncated": truncated,
                "new": len(created),
                "finding_ids": finding_ids,
            }
        ),
    )
    return created


def _frozen(details: Any) -> str:
    """A comparable form of a JSON value (keys sorted)."""
    return json.dumps(details, sort_keys=True)
