"""Set-based writes of what bots send: one statement per batch, never a query per row.

Rows arrive cleaned (trading.api.shapes): types, ranges and cross-field rules already hold.
The database keeps the last word through its constraints.
"""

import json
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from trading.models import Bot, PositionStatus, TradeSide, TradeStatus

USD_PLACES = Decimal("1e-8")
PCT_PLACES = Decimal("1e-6")


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int
    unchanged: int

    def as_json(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


# Columns a bot sends for a trade, in the order of the statement below.
TRADE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trade_id", "text"),
    ("symbol", "text"),
    ("exchange", "text"),
    ("side", "text"),
    ("quantity", "numeric"),
    ("entry_price", "numeric"),
    ("exit_price", "numeric"),
    ("entry_time", "timestamptz"),
    ("exit_time", "timestamptz"),
    ("fees_usd", "numeric"),
    ("pnl_usd", "numeric"),
    ("pnl_pct", "numeric"),
    ("status", "text"),
    ("source", "text"),
    ("leverage", "numeric"),
    ("exit_reason", "text"),
    ("entry_tag", "text"),
    ("strategy_data", "jsonb"),
)
_NAMES = [name for name, _ in TRADE_COLUMNS]
_MUTABLE = [name for name in _NAMES if name != "trade_id"]

TRADE_UPSERT_SQL = f"""
INSERT INTO trading.trades (bot_id, {", ".join(_NAMES)}, created_at, updated_at)
SELECT %(bot_id)s, {", ".join(f"u.{n}" for n in _NAMES)}, now(), now()
FROM unnest({", ".join(f"%({n})s::{t}[]" for n, t in TRADE_COLUMNS)})
    AS u({", ".join(_NAMES)})
ON CONFLICT (bot_id, trade_id) DO UPDATE SET
    {", ".join(f"{n} = EXCLUDED.{n}" for n in _MUTABLE)}, updated_at = now()
WHERE ({", ".join(f"trades.{n}" for n in _MUTABLE)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{n}" for n in _MUTABLE)})
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def trade_derived_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The figures the server computes: pnl of a closed trade the bot did not price, pnl_pct.

    pnl_usd (net of fees) = (exit - entry) x quantity - fees for a long, (entry - exit) x
    quantity - fees for a short. pnl_pct = pnl_usd / (quantity x entry_price) x 100.
    """
    if row["status"] == TradeStatus.CLOSED and row.get("pnl_usd") is None:
        move = row["exit_price"] - row["entry_price"]
        if row["side"] == TradeSide.SHORT:
            move = -move
        row["pnl_usd"] = (move * row["quantity"] - row["fees_usd"]).quantize(USD_PLACES)
    if row.get("pnl_usd") is not None:
        notional = row["quantity"] * row["entry_price"]
        row["pnl_pct"] = (row["pnl_usd"] / notional * 100).quantize(PCT_PLACES)
    else:
        row["pnl_pct"] = None
    return row


def array_literal(kind: str, values: list[Any]) -> str:
    """``values`` as one PostgreSQL array literal, ``{...}``, for a ``%s::<kind>[]`` parameter.

    The server parses one text per column much faster than psycopg adapts a list element by
    element (a third of a 1,000-trade batch's time went there). Numbers are written exactly
    (``str`` of a Decimal); every other value is quoted: text as it is, timestamps in ISO 8601,
    JSON as ``json.dumps`` writes it (``jsonb_text`` when a Decimal is inside).
    """
    if kind == "numeric":
        items = ["NULL" if v is None else str(v) for v in values]
    else:
        if kind == "jsonb":
            values = [None if v is None else _json_text(v) for v in values]
        elif kind == "timestamptz":
            values = [None if v is None else v.isoformat() for v in values]
        items = [
            "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        ]
    return "{" + ",".join(items) + "}"


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value)  # in C, several times jsonb_text's speed
    except TypeError:  # a Decimal inside (a JSON number with a fraction), written exactly
        return jsonb_text(value)


def trade_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new trades and update changed ones, keyed by (bot, trade_id), in one statement.

    A trade sent again with the same content is left alone (``unchanged``).
    """
    if not rows:
        return UpsertCounts(0, 0, 0)
    params: dict[str, Any] = {"bot_id": bot.bot_id}
    for name, kind in TRADE_COLUMNS:
        params[name] = array_literal(kind, [r[name] for r in rows])
    # Alone, one statement is atomic by itself: BEGIN and COMMIT would only add round trips.
    # In a caller's transaction, a savepoint keeps a refusal from aborting the caller's work.
    in_transaction = connection.in_atomic_block
    with transaction.atomic() if in_transaction else nullcontext(), connection.cursor() as cursor:
        cursor.execute(TRADE_UPSERT_SQL, params)
        flags = [created for (created,) in cursor.fetchall()]
    created = sum(flags)
    updated = len(flags) - created
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - len(flags))


# --- Orders, fills, positions, signals, balances ---------------------------------------------
#
# The same recipe as trades: rows arrive cleaned, one set-based statement writes a batch, and
# the counts come from RETURNING. What only the stored data can refuse (an unknown trade_id, an
# overfill) is checked first, inside the same transaction, and raised as RowsRefused: nothing
# of the batch is written.

Column = tuple[str, str]  # (name, PostgreSQL type)


class RowsRefused(Exception):
    """Rows the stored data refuses; nothing was written. ``errors``: (index, field, reason)."""

    def __init__(self, errors: list[tuple[int, str | None, str]]) -> None:
        super().__init__(f"{len(errors)} rows refused")
        self.errors = errors


class OrderNotFound(LookupError):
    """The bot has no order with this client_order_id (another bot's orders do not exist)."""


def jsonb_text(value: Any) -> str:
    """JSON text for a JSONB column, numbers written exactly as sent.

    The API's parser reads JSON numbers with a fraction as Decimal, which ``json.dumps`` refuses
    and a float would round; PostgreSQL reads the text back as the same numeric.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)
    if isinstance(value, dict):
        members = [f"{json.dumps(str(k))}:{jsonb_text(v)}" for k, v in value.items()]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([jsonb_text(v) for v in value]) + "]"
    return json.dumps(value)


def _unnest(columns: tuple[Column, ...]) -> str:
    """``unnest(%(a)s::t[], ...) AS u(a, ...)``: one array parameter per column."""
    arrays = ", ".join(f"%({name})s::{kind}[]" for name, kind in columns)
    return f"unnest({arrays}) AS u({', '.join(name for name, _ in columns)})"


def _arrays(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> dict[str, Any]:
    """One array parameter per column (``array_literal``, as for trades)."""
    return {name: array_literal(kind, [r[name] for r in rows]) for name, kind in columns}


def _names(columns: tuple[Column, ...], *, prefix: str = "", skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{prefix}{name}" for name, _ in columns if name not in skip)


def _assignments(columns: tuple[Column, ...], source: str, skip: tuple[str, ...]) -> str:
    return ", ".join(f"{n} = {source}.{n}" for n, _ in columns if n not in skip)


def _changed(columns: tuple[Column, ...], old: str, new: str, skip: tuple[str, ...]) -> str:
    """``(old.a, ...) IS DISTINCT FROM (new.a, ...)`` over the columns not skipped."""
    return (
        f"({_names(columns, prefix=f'{old}.', skip=skip)}) "
        f"IS DISTINCT FROM ({_names(columns, prefix=f'{new}.', skip=skip)})"
    )


def _counts(flags: list[bool], sent: int) -> UpsertCounts:
    created = sum(flags)
    return UpsertCounts(created=created, updated=len(flags) - created, unchanged=sent - len(flags))


def _lock_bot_table(cursor: Any, *, table: str, bot: Bot) -> None:
    """Serialise one bot's writes to a table whose natural key no unique constraint backs."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{table}:{bot.pk}"])


def trade_refs_resolve(cursor: Any, *, bot: Bot, refs: list[str | None]) -> list[int | None]:
    """The ids of the bot's trades named by their trade_id; RowsRefused names unknown ones."""
    wanted = sorted({ref for ref in refs if ref is not None})
    found: dict[str, int] = {}
    if wanted:
        cursor.execute(
            "SELECT trade_id, id FROM trading.trades WHERE bot_id = %s AND trade_id = ANY(%s)",
            [bot.bot_id, wanted],
        )
        found = dict(cursor.fetchall())
    errors: list[tuple[int, str | None, str]] = [
        (index, "trade_id", f"{bot.bot_id} has no trade {ref!r}")
        for index, ref in enumerate(refs)
        if ref is not None and ref not in found
    ]
    if errors:
        raise RowsRefused(errors)
    return [None if ref is None else found[ref] for ref in refs]


def _plain(number: Decimal) -> str:
    return f"{number.normalize():f}"


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
    (bot_id, {_names(ORDER_COLUMNS)}, filled_quantity, created_at, updated_at)
SELECT %(bot_id)s, {_names(ORDER_COLUMNS, prefix="u.")}, 0, now(), now()
FROM {_unnest(ORDER_COLUMNS)}
ON CONFLICT (bot_id, client_order_id) DO UPDATE SET
    {_assignments(ORDER_COLUMNS, "EXCLUDED", _ORDER_KEY)}, updated_at = now()
WHERE {_changed(ORDER_COLUMNS, "orders", "EXCLUDED", _ORDER_KEY)}
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
    params: dict[str, Any] = {"bot_id": bot.bot_id, **_arrays(rows, ORDER_COLUMNS)}
    with transaction.atomic(), connection.cursor() as cursor:
        trade_ids = trade_refs_resolve(cursor, bot=bot, refs=[r["trade_id"] for r in rows])
        params["trade_id"] = array_literal("bigint", trade_ids)
        cursor.execute(ORDER_BELOW_FILLED_SQL, params)
        errors: list[tuple[int, str | None, str]] = [
            (index, "quantity", f"is below the {_plain(filled)} its fills already filled")
            for index, filled in cursor.fetchall()
        ]
        if errors:
            raise RowsRefused(errors)
        cursor.execute(ORDER_UPSERT_SQL, params)
        flags = [created for (created,) in cursor.fetchall()]
    return _counts(flags, len(rows))


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
INSERT INTO trading.order_fills (order_id, {_names(ORDER_FILL_COLUMNS)})
SELECT %(order_id)s, {_names(ORDER_FILL_COLUMNS, prefix="u.")}
FROM {_unnest(ORDER_FILL_COLUMNS)}
ON CONFLICT (order_id, fill_id) DO UPDATE SET
    {_assignments(ORDER_FILL_COLUMNS, "EXCLUDED", _FILL_KEY)}
WHERE {_changed(ORDER_FILL_COLUMNS, "order_fills", "EXCLUDED", _FILL_KEY)}
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
                        f"would take the order's filled_quantity to {_plain(filled)},"
                        f" over its quantity {_plain(order_quantity)}",
                    )
                )
        if errors:
            raise RowsRefused(errors)
        cursor.execute(
            ORDER_FILL_UPSERT_SQL, {"order_id": order_id, **_arrays(rows, ORDER_FILL_COLUMNS)}
        )
        flags = [created for (created,) in cursor.fetchall()]
        cursor.execute(ORDER_FILL_TOTALS_SQL, {"order_id": order_id})
    return _counts(flags, len(rows))


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

# Open and partially closed positions: an upsert on the partial unique index
# positions_one_open_per_bot_symbol_side (its predicate, written the same way).
POSITION_UPSERT_OPEN_SQL = f"""
INSERT INTO trading.positions (bot_id, {_names(POSITION_COLUMNS)}, updated_at)
SELECT %(bot_id)s, {_names(POSITION_COLUMNS, prefix="u.")}, now()
FROM {_unnest(POSITION_COLUMNS)}
ON CONFLICT (bot_id, symbol, exchange, side) WHERE NOT (status = 'closed') DO UPDATE SET
    {_assignments(POSITION_COLUMNS, "EXCLUDED", _POSITION_KEY)}, updated_at = now()
WHERE {_changed(POSITION_COLUMNS, "positions", "EXCLUDED", _POSITION_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters

# Closed positions: each closes the key's open position; failing that it is a repeat of the
# closed position opened at the same time; failing that, one opened and closed between two
# reports, inserted closed. closed_at defaults to the stored one, then to now.
POSITION_CLOSE_SQL = f"""
WITH u AS (
    SELECT * FROM {_unnest(POSITION_COLUMNS)}
), target AS (
    SELECT {_names(POSITION_COLUMNS, prefix="u.", skip=("closed_at",))},
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
        {_assignments(POSITION_COLUMNS, "t", _POSITION_KEY)}, updated_at = now()
    FROM target AS t
    WHERE p.id = t.position_id AND {_changed(POSITION_COLUMNS, "p", "t", _POSITION_KEY)}
    RETURNING p.id
), added AS (
    INSERT INTO trading.positions (bot_id, {_names(POSITION_COLUMNS)}, updated_at)
    SELECT %(bot_id)s, {_names(POSITION_COLUMNS, prefix="t.")}, now()
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
    """
    if not rows:
        return UpsertCounts(0, 0, 0)
    still_open = [r for r in rows if r["status"] != PositionStatus.CLOSED]
    closing = [r for r in rows if r["status"] == PositionStatus.CLOSED]
    created = updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if closing:
            params = {"bot_id": bot.bot_id, **_arrays(closing, POSITION_COLUMNS)}
            cursor.execute(POSITION_CLOSE_SQL, params)
            created, updated = cursor.fetchone()
        if still_open:
            params = {"bot_id": bot.bot_id, **_arrays(still_open, POSITION_COLUMNS)}
            cursor.execute(POSITION_UPSERT_OPEN_SQL, params)
            counts = _counts([c for (c,) in cursor.fetchall()], len(still_open))
            created += counts.created
            updated += counts.updated
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)


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
    SELECT * FROM {_unnest(SIGNAL_COLUMNS)}
), stored AS (
    SELECT DISTINCT ON (s.symbol, s.signal_type, s.generated_at)
        s.id, s.symbol, s.signal_type, s.generated_at
    FROM trading.signals AS s
    JOIN u ON (s.symbol, s.signal_type, s.generated_at) = (u.symbol, u.signal_type, u.generated_at)
    WHERE s.bot_id = %(bot_id)s
    ORDER BY s.symbol, s.signal_type, s.generated_at, s.id
), changed AS (
    UPDATE trading.signals AS s SET {_assignments(SIGNAL_COLUMNS, "u", SIGNAL_KEY)}
    FROM u JOIN stored AS k
        ON (k.symbol, k.signal_type, k.generated_at) = (u.symbol, u.signal_type, u.generated_at)
    WHERE s.id = k.id AND {_changed(SIGNAL_COLUMNS, "s", "u", SIGNAL_KEY)}
    RETURNING s.id
), added AS (
    INSERT INTO trading.signals (bot_id, {_names(SIGNAL_COLUMNS)})
    SELECT %(bot_id)s, {_names(SIGNAL_COLUMNS, prefix="u.")}
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
    params: dict[str, Any] = {"bot_id": bot.bot_id, **_arrays(rows, SIGNAL_COLUMNS)}
    with transaction.atomic(), connection.cursor() as cursor:
        trade_ids = trade_refs_resolve(cursor, bot=bot, refs=[r["trade_id"] for r in rows])
        params["trade_id"] = array_literal("bigint", trade_ids)
        _lock_bot_table(cursor, table="trading.signals", bot=bot)
        cursor.execute(SIGNAL_UPSERT_SQL, params)
        created, updated = cursor.fetchone()
    return UpsertCounts(created=created, updated=updated, unchanged=len(rows) - created - updated)


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
INSERT INTO trading.account_balance (bot_id, {_names(BALANCE_COLUMNS)})
SELECT %(bot_id)s, {_names(BALANCE_COLUMNS, prefix="u.")}
FROM {_unnest(BALANCE_COLUMNS)}
ON CONFLICT (bot_id, ts, snapshot_type) DO UPDATE SET
    {_assignments(BALANCE_COLUMNS, "EXCLUDED", _BALANCE_KEY)}
WHERE {_changed(BALANCE_COLUMNS, "account_balance", "EXCLUDED", _BALANCE_KEY)}
RETURNING (xmax = 0) AS created
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def balance_upsert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new balance snapshots and update changed ones, keyed by (bot, ts, snapshot_type)."""
    if not rows:
        return UpsertCounts(0, 0, 0)
    params = {"bot_id": bot.bot_id, **_arrays(rows, BALANCE_COLUMNS)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BALANCE_UPSERT_SQL, params)
        flags = [created for (created,) in cursor.fetchall()]
    return _counts(flags, len(rows))
