"""Writing mapped freqtrade rows: set-based, a chunk of trades at a time.

A chunk's trades and orders (each order with its one fill) are COPYed into two temporary
tables, then each unified table gets one statement: an INSERT ... ON CONFLICT DO UPDATE fed
only the rows that are new or differ from the stored ones (``IS DISTINCT FROM``), so a re-run
over an unchanged source finds nothing to write, takes no row locks and dirties no page. The
ON CONFLICT clause keeps its own ``WHERE ... IS DISTINCT FROM``: a row another transaction
wrote in between is still left alone if it is equal.

What the ingest services check one batch at a time (the trade an order names, an order never
below its fills) holds here by construction: an order's trade is in the same chunk, written
just before, and an order's filled_quantity and avg_fill_price are its single fill's quantity
and price, which is what ``order_fill_upsert_many`` would compute from it.
"""

import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from django.db import connection

from importers.core import SourceError
from trading.models import Bot
from trading.services.ingest import UpsertCounts, position_upsert_many
from trading.services.ingest.backlog import TRADE_WRITTEN, with_backlog_mark
from trading.services.ingest.common import upsert_counts

TRADE_COLUMNS = (
    "trade_id",
    "symbol",
    "exchange",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "entry_time",
    "exit_time",
    "fees_usd",
    "pnl_usd",
    "pnl_pct",
    "status",
    "source",
    "leverage",
    "exit_reason",
    "entry_tag",
    "strategy_data",
)
_TRADE_MUTABLE = TRADE_COLUMNS[1:]
ORDER_COLUMNS = (
    "client_order_id",
    "exchange_order_id",
    "trade_id",  # the trade's trade_id (text): its row id is looked up on the way in
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "stop_price",
    "fees_usd",
    "status",
    "retry_count",
    "last_error",
    "submitted_at",
    "filled_at",
    "metadata",
)
FILL_COLUMNS = ("fill_quantity", "fill_price", "fill_fee", "fill_fee_currency", "fill_at")
_ORDER_STORED = tuple(c for c in ORDER_COLUMNS if c not in ("client_order_id", "trade_id"))


def _cols(names: tuple[str, ...], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{n}" for n in names)


# The staging tables take their column types from the unified tables (CREATE TABLE AS ... WITH
# NO DATA keeps each column's type and scale, not its constraints), so a staged value compares
# with the stored one as the stored one would be written.
STAGE_SQL = f"""
DROP TABLE IF EXISTS pg_temp.ft_trade_rows, pg_temp.ft_order_rows;
CREATE TEMPORARY TABLE ft_trade_rows ON COMMIT DROP AS
    SELECT {_cols(TRADE_COLUMNS)} FROM trading.trades WITH NO DATA;
CREATE TEMPORARY TABLE ft_order_rows ON COMMIT DROP AS
    SELECT {_cols(ORDER_COLUMNS, "o.").replace("o.trade_id", "t.trade_id")},
        f.quantity AS fill_quantity, f.price AS fill_price, f.fee AS fill_fee,
        f.fee_currency AS fill_fee_currency, f.filled_at AS fill_at
    FROM trading.orders AS o, trading.trades AS t, trading.order_fills AS f WITH NO DATA;
"""  # noqa: S608 - identifiers are the constants above

# The upsert also marks the risk_metrics days a past trade makes stale (as the API does).
TRADES_UPSERT_SQL = with_backlog_mark(f"""
INSERT INTO trading.trades (bot_id, run_id, {_cols(TRADE_COLUMNS)}, created_at, updated_at)
SELECT %(bot_id)s, %(run_id)s, {_cols(TRADE_COLUMNS, "u.")}, now(), now()
FROM ft_trade_rows AS u
LEFT JOIN trading.trades AS t ON t.bot_id = %(bot_id)s AND t.trade_id = u.trade_id
WHERE t.id IS NULL OR ({_cols(_TRADE_MUTABLE, "t.")}) IS DISTINCT FROM ({_cols(_TRADE_MUTABLE, "u.")})
ON CONFLICT (bot_id, trade_id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in _TRADE_MUTABLE)}, updated_at = now()
WHERE ({_cols(_TRADE_MUTABLE, "trades.")}) IS DISTINCT FROM ({_cols(_TRADE_MUTABLE, "EXCLUDED.")})
RETURNING {TRADE_WRITTEN}
""")  # noqa: S608, E501

_ORDER_TOTALS = ("trade_id", "filled_quantity", "avg_fill_price")
ORDERS_UPSERT_SQL = f"""
INSERT INTO trading.orders (bot_id, run_id, client_order_id, {_cols(_ORDER_STORED)},
    {_cols(_ORDER_TOTALS)}, created_at, updated_at)
SELECT %(bot_id)s, %(run_id)s, u.client_order_id, {_cols(_ORDER_STORED, "u.")},
    t.id, coalesce(u.fill_quantity, 0), u.fill_price, now(), now()
FROM ft_order_rows AS u
JOIN trading.trades AS t ON t.bot_id = %(bot_id)s AND t.trade_id = u.trade_id
LEFT JOIN trading.orders AS o ON o.bot_id = %(bot_id)s AND o.client_order_id = u.client_order_id
WHERE o.id IS NULL
    OR ({_cols(_ORDER_STORED + _ORDER_TOTALS, "o.")})
    IS DISTINCT FROM ({_cols(_ORDER_STORED, "u.")}, t.id, coalesce(u.fill_quantity, 0), u.fill_price)
ON CONFLICT (bot_id, client_order_id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in _ORDER_STORED + _ORDER_TOTALS)}, updated_at = now()
WHERE ({_cols(_ORDER_STORED + _ORDER_TOTALS, "orders.")})
    IS DISTINCT FROM ({_cols(_ORDER_STORED + _ORDER_TOTALS, "EXCLUDED.")})
RETURNING (xmax = 0)
"""  # noqa: S608, E501

_FILL_STORED = ("quantity", "price", "fee", "fee_currency", "filled_at")
FILLS_UPSERT_SQL = f"""
INSERT INTO trading.order_fills (order_id, fill_id, {_cols(_FILL_STORED)})
SELECT o.id, u.client_order_id, {_cols(FILL_COLUMNS, "u.")}
FROM ft_order_rows AS u
JOIN trading.orders AS o ON o.bot_id = %(bot_id)s AND o.client_order_id = u.client_order_id
LEFT JOIN trading.order_fills AS f ON f.order_id = o.id AND f.fill_id = u.client_order_id
WHERE u.fill_quantity IS NOT NULL
    AND (f.id IS NULL OR ({_cols(_FILL_STORED, "f.")}) IS DISTINCT FROM ({_cols(FILL_COLUMNS, "u.")}))
ON CONFLICT (order_id, fill_id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in _FILL_STORED)}
WHERE ({_cols(_FILL_STORED, "order_fills.")}) IS DISTINCT FROM ({_cols(_FILL_STORED, "EXCLUDED.")})
RETURNING (xmax = 0)
"""  # noqa: S608, E501

# Open trades point at their open position, and so do their orders.
LINK_POSITIONS_SQL = """
WITH linked AS (
    SELECT t.id AS trade_pk, p.id AS position_id
    FROM trading.trades AS t
    JOIN trading.positions AS p
        ON p.bot_id = t.bot_id AND (p.symbol, p.exchange, p.side) = (t.symbol, t.exchange, t.side)
        AND NOT (p.status = 'closed')
    WHERE t.bot_id = %(bot_id)s AND t.trade_id = ANY(%(trade_ids)s::text[])
), trades AS (
    UPDATE trading.trades AS t SET position_id = l.position_id, updated_at = now()
    FROM linked AS l
    WHERE t.id = l.trade_pk AND t.position_id IS DISTINCT FROM l.position_id
    RETURNING t.id
)
UPDATE trading.orders AS o SET position_id = l.position_id, updated_at = now()
FROM linked AS l
WHERE o.bot_id = %(bot_id)s AND o.trade_id = l.trade_pk
    AND o.position_id IS DISTINCT FROM l.position_id
"""

# A trade imported open and found closed by a later import closes the position it opened.
CLOSE_POSITIONS_SQL = """
UPDATE trading.positions AS p
SET status = 'closed', quantity = 0, closed_at = t.exit_time, realized_pnl_usd = t.pnl_usd,
    updated_at = now()
FROM trading.trades AS t
JOIN ft_trade_rows AS u ON u.trade_id = t.trade_id AND u.status = 'closed'
WHERE t.bot_id = %(bot_id)s AND t.position_id = p.id AND NOT (p.status = 'closed')
"""


def staging_create() -> None:
    """The two staging tables of this transaction (dropped at its end)."""
    with connection.cursor() as cursor:
        cursor.execute(STAGE_SQL)


# Where PostgreSQL says a COPY failed: "COPY ft_trade_rows, line 3, column exit_reason: ...".
_COPY_CONTEXT = re.compile(r"COPY \w+, line (\d+)(?:, column (\w+))?")


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` into the staging ``table``; a row the database refuses (a value its column
    cannot hold) raises SourceError naming the row's legacy key, the column and the reason."""
    cursor.execute(f"TRUNCATE {table}")
    try:
        with cursor.copy(f"COPY {table} ({_cols(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
    except psycopg.DataError as exc:
        found = _COPY_CONTEXT.search(exc.diag.context or "")
        if found is None or not 0 < int(found.group(1)) <= len(rows):
            raise
        what, key = _STAGED[table]
        row = rows[int(found.group(1)) - 1]
        raise SourceError(
            f"{what} {row[key]}: {found.group(2) or 'row'}: the database refused it"
            f" ({exc.diag.message_primary})"
        ) from exc


# A staging table's rows: what the report calls them, and the column that names one.
_STAGED = {"ft_trade_rows": ("trades", "trade_id"), "ft_order_rows": ("orders", "client_order_id")}


def _returned(cursor: Any, sql: str, bot: Bot, sent: int, run_id: int | None) -> UpsertCounts:
    # run_id: the import's run, which the trades and orders it creates are linked to.
    cursor.execute(sql, {"bot_id": bot.bot_id, "run_id": run_id})
    return upsert_counts([created for (created,) in cursor.fetchall()], sent)


def chunk_write(
    cursor: Any,
    *,
    bot: Bot,
    trades: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    run_id: int | None = None,
) -> dict[str, UpsertCounts]:
    """Stage and write one chunk of trades with their orders and fills: counts per table."""
    fills = sum(1 for order in orders if order["fill_quantity"] is not None)
    _copy(cursor, "ft_trade_rows", TRADE_COLUMNS, trades)
    _copy(cursor, "ft_order_rows", ORDER_COLUMNS + FILL_COLUMNS, orders)
    # Statistics of the join keys only: the JSONB columns would make it slow.
    cursor.execute("ANALYZE ft_trade_rows (trade_id), ft_order_rows (client_order_id, trade_id)")
    return {
        "trades": _returned(cursor, TRADES_UPSERT_SQL, bot, len(trades), run_id),
        "orders": _returned(cursor, ORDERS_UPSERT_SQL, bot, len(orders), run_id),
        "order_fills": _returned(cursor, FILLS_UPSERT_SQL, bot, fills, run_id),
    }


class ChunkWriter:
    """Writes chunks on a second thread, so the database works on one chunk while Python maps
    the next (on two cores, that halves an import).

    The thread uses the connection of the caller's transaction directly (psycopg serialises
    its use), never Django's per-thread one, which would be another connection outside the
    transaction. Between ``submit`` and ``result`` the caller must not use the connection.
    """

    def __init__(self, *, bot: Bot, run_id: int | None = None) -> None:
        connection.ensure_connection()
        self.bot = bot
        self.run_id = run_id
        self._raw = connection.connection
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="freqtrade-write")

    def submit(
        self, *, trades: list[dict[str, Any]], orders: list[dict[str, Any]]
    ) -> "Future[dict[str, UpsertCounts]]":
        return self._executor.submit(self._write, trades, orders)

    def _write(
        self, trades: list[dict[str, Any]], orders: list[dict[str, Any]]
    ) -> dict[str, UpsertCounts]:
        with self._raw.cursor() as cursor:
            return chunk_write(
                cursor, bot=self.bot, trades=trades, orders=orders, run_id=self.run_id
            )

    @staticmethod
    def result(future: "Future[dict[str, UpsertCounts]]") -> dict[str, UpsertCounts]:
        """The chunk's counts; a database error comes back as Django's, as from a cursor."""
        with connection.wrap_database_errors:
            return future.result()

    def close(self) -> None:
        """Wait for the chunk being written (the transaction must not end under it)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def positions_write(
    *, bot: Bot, positions: list[dict[str, Any]], open_trade_ids: list[str]
) -> tuple[UpsertCounts, int]:
    """Close the positions of the chunk's trades that have closed since they were imported,
    upsert the chunk's open positions and link their trades (and orders) to them. Returns the
    upsert's counts and how many positions were closed."""
    with connection.cursor() as cursor:
        cursor.execute(CLOSE_POSITIONS_SQL, {"bot_id": bot.bot_id})
        closed = cursor.rowcount
        counts = position_upsert_many(bot=bot, rows=positions)
        if open_trade_ids:
            cursor.execute(LINK_POSITIONS_SQL, {"bot_id": bot.bot_id, "trade_ids": open_trade_ids})
    return counts, closed


__all__ = ["ChunkWriter", "chunk_write", "positions_write", "staging_create"]
