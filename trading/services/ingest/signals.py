"""Signals, keyed by (bot, symbol, signal_type, generated_at)."""

from typing import Any

from django.db import connection, transaction

from trading.models import Bot
from trading.services.ingest.common import (
    RUN_COLUMN,
    Column,
    UpsertCounts,
    array_literal,
    array_params,
    assignments_sql,
    changed_sql,
    column_list,
    lock_bot_table,
    run_id_sql,
    run_params,
    trade_refs_resolve,
    unnest_sql,
)

# --- signals --------------------------------------------------------------------------------

SIGNAL_COLUMNS: tuple[Column, ...] = (
    ("symbol", "text"),
    ("signal_type", "text"),
    ("generated_at", "timestamptz"),
    ("direction", "text"),
    ("strength", "numeric"),
    ("price", "numeric"),
    ("filters_passed", "jsonb"),
    ("filters_failed", "jsonb"),
    ("validated", "boolean"),
    ("executed", "boolean"),
    ("trade_id", "bigint"),  # the trade's id, resolved from the bot's trade_id
    ("outcome", "text"),
    ("outcome_pnl_usd", "numeric"),
    ("metadata", "jsonb"),
)
SIGNAL_KEY = ("symbol", "signal_type", "generated_at")

# No unique constraint backs the key (SCHEMA.md names none); the writer holds a per-bot lock, and
# of stored duplicates (written some other way) the oldest is the one updated.
SIGNAL_UPSERT_SQL = f"""
WITH u AS (
    SELECT * FROM {unnest_sql((*SIGNAL_COLUMNS, RUN_COLUMN))}
), stored AS (
    SELECT DISTINCT ON (s.symbol, s.signal_type, s.generated_at)
        s.id, s.symbol, s.signal_type, s.generated_at
    FROM trading.signals AS s
    JOIN u ON (s.symbol, s.signal_type, s.generated_at) = (u.symbol, u.signal_type, u.generated_at)
    WHERE s.bot_id = %(bot_id)s
    ORDER BY s.symbol, s.signal_type, s.generated_at, s.id
), changed AS (
    UPDATE trading.signals AS s SET {assignments_sql(SIGNAL_COLUMNS, "u", SIGNAL_KEY)}
    FROM u JOIN stored AS k
        ON (k.symbol, k.signal_type, k.generated_at) = (u.symbol, u.signal_type, u.generated_at)
    WHERE s.id = k.id AND {changed_sql(SIGNAL_COLUMNS, "s", "u", SIGNAL_KEY)}
    RETURNING s.id
), added AS (
    INSERT INTO trading.signals (bot_id, run_id, {column_list(SIGNAL_COLUMNS)})
    SELECT %(bot_id)s, {run_id_sql("u.run_id")}, {column_list(SIGNAL_COLUMNS, prefix="u.")}
    FROM u
    WHERE NOT EXISTS (
        SELECT FROM stored AS k
        WHERE (k.symbol, k.signal_type, k.generated_at) = (u.symbol, u.signal_type, u.generated_at)
    )
    RETURNING id
)
SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM changed)
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def signal_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new signals and update changed ones (the outcome, say), keyed by
    (bot, symbol, signal_type, generated_at). ``trade_id`` is the bot's id of the trade the
    signal led to."""
    if not rows:
        return UpsertCounts(0, 0, 0)
    params: dict[str, Any] = {"bot_id": bot.bot_id, **array_params(rows, SIGNAL_COLUMNS)}
    params |= run_params(bot=bot, rows=rows)
    with transaction.atomic(), connection.cursor() as cursor:
        trade_ids = trade_refs_resolve(cursor, bot=bot, refs=[r["trade_id"] for r in rows])
        params["trade_id"] = array_literal("bigint", trade_ids)
        lock_bot_table(cursor, table="trading.signals", bot=bot)
        cursor.execute(SIGNAL_UPSERT_SQL, params)
        created, updated = cursor.fetchone()
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)
