"""Account balances, keyed by (bot, ts, snapshot_type)."""

from typing import Any

from django.db import connection, transaction

from trading.models import Bot
from trading.services.ingest.common import (
    RUN_COLUMN,
    Column,
    UpsertCounts,
    array_params,
    assignments_sql,
    changed_sql,
    column_list,
    key_order_sql,
    run_id_sql,
    run_params,
    unnest_sql,
    upsert_counts,
)

# --- account balances -----------------------------------------------------------------------

BALANCE_COLUMNS: tuple[Column, ...] = (
    ("ts", "timestamptz"),
    ("snapshot_type", "text"),
    ("balance_usd", "numeric"),
    ("equity_usd", "numeric"),
    ("margin_used_usd", "numeric"),
    ("available_margin_usd", "numeric"),
    ("unrealized_pnl_usd", "numeric"),
    ("metadata", "jsonb"),
)
_BALANCE_KEY = ("ts", "snapshot_type")

BALANCE_UPSERT_SQL = f"""
INSERT INTO trading.account_balance (bot_id, run_id, {column_list(BALANCE_COLUMNS)})
SELECT %(bot_id)s, {run_id_sql("u.run_id")}, {column_list(BALANCE_COLUMNS, prefix="u.")}
FROM {unnest_sql((*BALANCE_COLUMNS, RUN_COLUMN))}
{key_order_sql(BALANCE_COLUMNS, _BALANCE_KEY)}
ON CONFLICT (bot_id, ts, snapshot_type) DO UPDATE SET
    {assignments_sql(BALANCE_COLUMNS, "EXCLUDED", _BALANCE_KEY)}
WHERE {changed_sql(BALANCE_COLUMNS, "account_balance", "EXCLUDED", _BALANCE_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def balance_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new balance snapshots and update changed ones, keyed by (bot, ts, snapshot_type)."""
    if not rows:
        return UpsertCounts(0, 0, 0)
    params = {"bot_id": bot.bot_id, **array_params(rows, BALANCE_COLUMNS)}
    params |= run_params(bot=bot, rows=rows)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BALANCE_UPSERT_SQL, params)
        flags = [created for (created,) in cursor.fetchall()]
    return upsert_counts(flags, len(rows))
