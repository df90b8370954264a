"""Orders, upserted by (bot, client_order_id), and their fills, which set the order's totals."""

from typing import Any

from django.db import connection, transaction

from trading.models import Bot
from trading.services.ingest.common import (
    RUN_COLUMN,
    Column,
    OrderNotFound,
    RowsRefused,
    UpsertCounts,
    array_literal,
    array_params,
    assignments_sql,
    changed_sql,
    column_list,
    key_order_sql,
    plain_decimal,
    run_id_sql,
    run_params,
    trade_refs_resolve,
    unnest_sql,
    upsert_counts,
)

# --- orders ---------------------------------------------------------------------------------

ORDER_COLUMNS: tuple[Column, ...] = (
    ("client_order_id", "text"),
    ("exchange_order_id", "text"),
    ("trade_id", "bigint"),  # the trade's id, resolved from the bot's trade_id
    ("symbol", "text"),
    ("side", "text"),
    ("order_type", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("stop_price", "numeric"),
    ("fees_usd", "numeric"),
    ("status", "text"),
    ("retry_count", "integer"),
    ("last_error", "text"),
    ("submitted_at", "timestamptz"),
    ("filled_at", "timestamptz"),
    ("metadata", "jsonb"),
)
_ORDER_KEY = ("client_order_id",)

# filled_quantity and avg_fill_price are the fills' (order_fill_upsert_many), never the bot's.
ORDER_UPSERT_SQL = f"""
INSERT INTO trading.orders
    (bot_id, run_id, {column_list(ORDER_COLUMNS)}, filled_quantity, created_at, updated_at)
SELECT %(bot_id)s, {run_id_sql("u.run_id")}, {column_list(ORDER_COLUMNS, prefix="u.")}, 0,
    now(), now()
FROM {unnest_sql((*ORDER_COLUMNS, RUN_COLUMN))}
{key_order_sql(ORDER_COLUMNS, _ORDER_KEY)}
ON CONFLICT (bot_id, client_order_id) DO UPDATE SET
    {assignments_sql(ORDER_COLUMNS, "EXCLUDED", _ORDER_KEY)}, updated_at = now()
WHERE {changed_sql(ORDER_COLUMNS, "orders", "EXCLUDED", _ORDER_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters

# Stored orders whose fills already exceed the quantity the batch now gives them.
ORDER_BELOW_FILLED_SQL = """
SELECT u.n - 1, o.filled_quantity
FROM unnest(%(client_order_id)s::text[], %(quantity)s::numeric[])
    WITH ORDINALITY AS u(client_order_id, quantity, n)
JOIN trading.orders AS o ON o.bot_id = %(bot_id)s AND o.client_order_id = u.client_order_id
WHERE o.filled_quantity > u.quantity
ORDER BY u.n
"""


def order_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new orders and update changed ones, keyed by (bot, client_order_id).

    Each row is the order's whole state as the bot sees it; ``trade_id`` is the bot's own id
    of the trade the order belongs to. An order may not shrink below what its fills filled.
    """
    if not rows:
        return UpsertCounts(0, 0, 0)
    params: dict[str, Any] = {"bot_id": bot.bot_id, **array_params(rows, ORDER_COLUMNS)}
    params |= run_params(bot=bot, rows=rows)
    with transaction.atomic(), connection.cursor() as cursor:
        trade_ids = trade_refs_resolve(cursor, bot=bot, refs=[r["trade_id"] for r in rows])
        params["trade_id"] = array_literal("bigint", trade_ids)
        cursor.execute(ORDER_BELOW_FILLED_SQL, params)
        errors: list[tuple[int, str | None, str]] = [
            (index, "quantity", f"is below the {plain_decimal(filled)} its fills already filled")
            for index, filled in cursor.fetchall()
        ]
        if errors:
            raise RowsRefused(errors)
        cursor.execute(ORDER_UPSERT_SQL, params)
        flags = [created for (created,) in cursor.fetchall()]
    return upsert_counts(flags, len(rows))


# --- order fills ----------------------------------------------------------------------------

ORDER_FILL_COLUMNS: tuple[Column, ...] = (
    ("fill_id", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("fee", "numeric"),
    ("fee_currency", "text"),
    ("filled_at", "timestamptz"),
)
_FILL_KEY = ("fill_id",)

ORDER_FILL_UPSERT_SQL = f"""
INSERT INTO trading.order_fills (order_id, {column_list(ORDER_FILL_COLUMNS)})
SELECT %(order_id)s, {column_list(ORDER_FILL_COLUMNS, prefix="u.")}
FROM {unnest_sql(ORDER_FILL_COLUMNS)}
ON CONFLICT (order_id, fill_id) DO UPDATE SET
    {assignments_sql(ORDER_FILL_COLUMNS, "EXCLUDED", _FILL_KEY)}
WHERE {changed_sql(ORDER_FILL_COLUMNS, "order_fills", "EXCLUDED", _FILL_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters

# filled_quantity = sum(q); avg_fill_price = sum(q x p) / sum(q) rounded half-even to 10 places,
# exactly: integer division and remainder of the sum scaled by 10^10 (numeric division would
# round once before round() rounds again).
ORDER_FILL_TOTALS_SQL = """
WITH totals AS (
    SELECT sum(quantity) AS filled, sum(quantity * price) * 10000000000 AS scaled
    FROM trading.order_fills
    WHERE order_id = %(order_id)s
    HAVING count(*) > 0
), parts AS (
    SELECT filled, div(scaled, filled) AS units, 2 * mod(scaled, filled) AS twice_rest
    FROM totals
), average AS (
    SELECT filled,
        (units + CASE WHEN twice_rest > filled OR (twice_rest = filled AND mod(units, 2) = 1)
                      THEN 1 ELSE 0 END) * 0.0000000001 AS price
    FROM parts
)
UPDATE trading.orders AS o
SET filled_quantity = a.filled, avg_fill_price = a.price, updated_at = now()
FROM average AS a
WHERE o.id = %(order_id)s
    AND (o.filled_quantity, o.avg_fill_price) IS DISTINCT FROM (a.filled, a.price)
"""


def order_fill_upsert_many(
    *, bot: Bot, client_order_id: str, rows: list[dict[str, Any]]
) -> UpsertCounts:
    """Insert new fills and update changed ones of one order, keyed by (order, fill_id), then
    set the order's filled_quantity and avg_fill_price from all its fills.

    The order is locked first, so concurrent fills of one order are counted one after another.
    Fills that would take filled_quantity past the order's quantity are refused (RowsRefused
    names each, in batch order); the bot having no such order raises OrderNotFound.
    The order's fees_usd stays the bot's: a fill's fee is in its own fee_currency, not USD.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, quantity FROM trading.orders"
            " WHERE bot_id = %s AND client_order_id = %s FOR UPDATE",
            [bot.bot_id, client_order_id],
        )
        found = cursor.fetchone()
        if found is None:
            raise OrderNotFound(client_order_id)
        order_id, order_quantity = found
        if not rows:
            return UpsertCounts(0, 0, 0)
        # Fills sent again replace their stored selves: count only the others as filled so far.
        cursor.execute(
            "SELECT coalesce(sum(quantity), 0) FROM trading.order_fills"
            " WHERE order_id = %s AND fill_id <> ALL(%s::text[])",
            [order_id, [r["fill_id"] for r in rows]],
        )
        (filled,) = cursor.fetchone()
        errors: list[tuple[int, str | None, str]] = []
        for index, row in enumerate(rows):
            filled += row["quantity"]
            if filled > order_quantity:
                errors.append(
                    (
                        index,
                        "quantity",
                        f"would take the order's filled_quantity to {plain_decimal(filled)},"
                        f" over its quantity {plain_decimal(order_quantity)}",
                    )
                )
        if errors:
            raise RowsRefused(errors)
        cursor.execute(
            ORDER_FILL_UPSERT_SQL, {"order_id": order_id, **array_params(rows, ORDER_FILL_COLUMNS)}
        )
        flags = [created for (created,) in cursor.fetchall()]
        cursor.execute(ORDER_FILL_TOTALS_SQL, {"order_id": order_id})
    return upsert_counts(flags, len(rows))
