"""Positions: the open one per (bot, symbol, exchange, side) is upserted; closing closes it."""

from typing import Any

from django.db import connection, transaction

from trading.models import Bot, PositionStatus
from trading.services.ingest.common import (
    Column,
    UpsertCounts,
    array_params,
    assignments_sql,
    changed_sql,
    column_list,
    key_order_sql,
    lock_bot_table,
    unnest_sql,
    upsert_counts,
    values_check,
)

# --- positions ------------------------------------------------------------------------------

POSITION_COLUMNS: tuple[Column, ...] = (
    ("symbol", "text"),
    ("exchange", "text"),
    ("side", "text"),
    ("status", "text"),
    ("quantity", "numeric"),
    ("initial_quantity", "numeric"),
    ("avg_entry_price", "numeric"),
    ("current_price", "numeric"),
    ("unrealized_pnl_usd", "numeric"),
    ("realized_pnl_usd", "numeric"),
    ("stop_loss", "numeric"),
    ("take_profit", "numeric"),
    ("trailing_stop_pct", "numeric"),
    ("trailing_stop_price", "numeric"),
    ("highest_price", "numeric"),
    ("lowest_price", "numeric"),
    ("leverage", "numeric"),
    ("opened_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("metadata", "jsonb"),
)
_POSITION_KEY = ("symbol", "exchange", "side")
# A position's value is quantity x each of these (the analytics sums take the current price,
# else the average entry price).
POSITION_PRICES = ("avg_entry_price", "current_price")

# Open and partially closed positions: an upsert on the partial unique index
# positions_one_open_per_bot_symbol_side (its predicate, written the same way).
POSITION_UPSERT_OPEN_SQL = f"""
INSERT INTO trading.positions (bot_id, {column_list(POSITION_COLUMNS)}, updated_at)
SELECT %(bot_id)s, {column_list(POSITION_COLUMNS, prefix="u.")}, now()
FROM {unnest_sql(POSITION_COLUMNS)}
{key_order_sql(POSITION_COLUMNS, _POSITION_KEY)}
ON CONFLICT (bot_id, symbol, exchange, side) WHERE NOT (status = 'closed') DO UPDATE SET
    {assignments_sql(POSITION_COLUMNS, "EXCLUDED", _POSITION_KEY)}, updated_at = now()
WHERE {changed_sql(POSITION_COLUMNS, "positions", "EXCLUDED", _POSITION_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters

# Closed positions: each closes the key's open position; failing that it is a repeat of the
# closed position opened at the same time; failing that, one opened and closed between two
# reports, inserted closed. closed_at defaults to the stored one, then to now.
POSITION_CLOSE_SQL = f"""
WITH u AS (
    SELECT * FROM {unnest_sql(POSITION_COLUMNS)}
), target AS (
    SELECT {column_list(POSITION_COLUMNS, prefix="u.", skip=("closed_at",))},
        coalesce(u.closed_at, m.closed_at, now()) AS closed_at, m.id AS position_id
    FROM u LEFT JOIN LATERAL (
        SELECT p.id, p.closed_at
        FROM trading.positions AS p
        WHERE p.bot_id = %(bot_id)s
            AND (p.symbol, p.exchange, p.side) = (u.symbol, u.exchange, u.side)
            AND (NOT (p.status = 'closed') OR p.opened_at = u.opened_at)
        ORDER BY p.status = 'closed', p.id DESC
        LIMIT 1
    ) AS m ON true
), changed AS (
    UPDATE trading.positions AS p SET
        {assignments_sql(POSITION_COLUMNS, "t", _POSITION_KEY)}, updated_at = now()
    FROM target AS t
    WHERE p.id = t.position_id AND {changed_sql(POSITION_COLUMNS, "p", "t", _POSITION_KEY)}
    RETURNING p.id
), added AS (
    INSERT INTO trading.positions (bot_id, {column_list(POSITION_COLUMNS)}, updated_at)
    SELECT %(bot_id)s, {column_list(POSITION_COLUMNS, prefix="t.")}, now()
    FROM target AS t
    WHERE t.position_id IS NULL
    RETURNING id
)
SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM changed)
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def position_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Upsert positions keyed by (bot, symbol, exchange, side) of the position not closed.

    An open or partially closed row updates that position or opens one. A closed row closes
    it (status closed, closed_at as sent or now). Rows arrive with at most one per key.

    One bot's position writes run one at a time (a per-bot lock): a batch is two statements,
    closes then opens, and two batches crossing (each closing what the other reopens) would
    otherwise deadlock; and no constraint backs a closed position's key.

    RowsRefused, nothing written, names a row whose value (quantity x price) a USD column
    cannot hold (value_problem).
    """
    if not rows:
        return UpsertCounts(0, 0, 0)
    values_check(rows, POSITION_PRICES, "position")
    still_open = [r for r in rows if r["status"] != PositionStatus.CLOSED]
    closing = [r for r in rows if r["status"] == PositionStatus.CLOSED]
    created = updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        lock_bot_table(cursor, table="trading.positions", bot=bot)
        if closing:
            params = {"bot_id": bot.bot_id, **array_params(closing, POSITION_COLUMNS)}
            cursor.execute(POSITION_CLOSE_SQL, params)
            created, updated = cursor.fetchone()
        if still_open:
            params = {"bot_id": bot.bot_id, **array_params(still_open, POSITION_COLUMNS)}
            cursor.execute(POSITION_UPSERT_OPEN_SQL, params)
            counts = upsert_counts([c for (c,) in cursor.fetchall()], len(still_open))
            created += counts.created
            updated += counts.updated
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)
