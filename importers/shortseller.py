"""Shortseller: its PostgreSQL database (``multiasset_trading``, schema ``public``), read in place.

Mapping (shared/legacy/README.md): trades ``id`` -> trade_id ``ss-<id>``; SELL opened a short,
BUY a long; ``BTCUSDT`` -> ``BTC/USDT``; naive timestamps are UTC; pnl_pct = pnl / (qty x
entry_price) x 100; ``strategy`` and ``notes`` -> strategy_data. Rows equal in every column
but ``id`` are one trade written twice: the lowest id is imported, the others are counted as
duplicates (and named in the kept trade's ``legacy.duplicate_ids``). positions -> open
positions, signals (acted_on -> executed), balance_history -> account_balance (imported).
Every legacy column without a unified home lands under ``legacy`` in the row's JSONB.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from importers.core import (
    BotSpec,
    FieldReader,
    ImportContext,
    ImportJob,
    SourceError,
    source_label,
)
from importers.guard import last_activity, positions_closed_unknown
from trading.models import (
    AccountBalance,
    Position,
    PositionStatus,
    Signal,
    SignalDirection,
    SignalOutcome,
    SnapshotType,
    Trade,
    TradeSide,
    TradeSource,
    TradeStatus,
)
from trading.services.ingest import (
    balance_upsert_many,
    position_upsert_many,
    signal_upsert_many,
    trade_upsert_many,
)
from trading.services.ingest.common import PCT_PLACES

COMMAND = "import_shortseller"
BOT_ID = "shortseller_001"
# The columns each legacy table must have; any other column is kept under ``legacy``.
TABLES: dict[str, tuple[str, ...]] = {
    "trades": (
        "id",
        "symbol",
        "side",
        "qty",
        "entry_price",
        "exit_price",
        "timestamp",
        "executed_at",
        "pnl",
        "status",
        "strategy",
        "notes",
    ),
    "positions": (
        "id",
        "symbol",
        "side",
        "qty",
        "avg_entry_price",
        "current_price",
        "unrealized_pnl",
        "stop_loss",
        "take_profit",
        "opened_at",
        "updated_at",
    ),
    "signals": ("id", "symbol", "signal_type", "strength", "price", "timestamp", "acted_on"),
    "balance_history": ("id", "timestamp", "balance", "equity", "margin_used"),
}
SIDES = {"SELL": TradeSide.SHORT, "BUY": TradeSide.LONG}
SIGNAL_DIRECTIONS = {"short_entry": SignalDirection.SHORT}


@contextmanager
def source_connect(url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A read-only connection to the legacy database; SourceError when it cannot be opened."""
    try:
        conn = psycopg.connect(url, row_factory=dict_row, connect_timeout=10)
    except psycopg.Error as exc:
        raise SourceError(f"cannot open {source_label(url)}: {exc}".strip()) from exc
    try:
        conn.read_only = True
        yield conn
    finally:
        conn.close()


def source_read(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the four tables, in id order; SourceError names a missing table or column."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with source_connect(url) as conn:
        for table, required in TABLES.items():
            columns = [
                row["column_name"]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s",
                    [table],
                )
            ]
            if not columns:
                raise SourceError(f"table public.{table} is missing in {source_label(url)}")
            missing = [name for name in required if name not in columns]
            if missing:
                raise SourceError(f"table public.{table} has no column {', '.join(missing)}")
            query = f'SELECT * FROM public."{table}" ORDER BY id'  # noqa: S608 - a constant name
            tables[table] = list(conn.execute(query))
    return tables


def shortseller_job(
    *,
    source_url: str,
    exchange: str = "binance",
    initial_capital_usd: Decimal | None = None,
    tables: dict[str, list[dict[str, Any]]] | None = None,
    bot_id: str = BOT_ID,
) -> ImportJob:
    """The import of one Shortseller database. The source is read here, before any write."""
    data = tables if tables is not None else source_read(source_url)
    if initial_capital_usd is None:
        balances = sorted(data["balance_history"], key=lambda r: (r["timestamp"], r["id"]))
        if not balances:
            raise SourceError("balance_history is empty: give --initial-capital for the bot")
        initial_capital_usd = Decimal(balances[0]["balance"])
    spec = BotSpec(
        bot_id=bot_id,
        name="Shortseller",
        strategy_type="short_biased_multi_asset",
        exchange=exchange,
        initial_capital_usd=initial_capital_usd,
        metadata={"legacy_source": "shortseller"},
    )

    def work(ctx: ImportContext) -> None:
        trades = trades_map(ctx, data["trades"], exchange=exchange)
        ctx.write("trades", trade_upsert_many, trades, keys=lambda r: r["trade_id"])
        positions = positions_map(ctx, data["positions"], exchange=exchange)
        positions = positions_closed_unknown(ctx, positions)
        ctx.write("positions", position_upsert_many, positions, keys=_legacy_key)
        signals = signals_map(ctx, data["signals"])
        ctx.write("signals", signal_upsert_many, signals, keys=_legacy_key)
        balances = balances_map(ctx, data["balance_history"])
        ctx.write("account_balance", balance_upsert_many, balances, keys=_legacy_key)

    activity = last_activity(
        [
            *(row[name] for row in data["trades"] for name in ("timestamp", "executed_at")),
            *(row[name] for row in data["positions"] for name in ("opened_at", "updated_at")),
            *(row["timestamp"] for row in data["signals"]),
            *(row["timestamp"] for row in data["balance_history"]),
        ]
    )
    return ImportJob(
        command=COMMAND,
        source=source_label(source_url),
        bot=spec,
        work=work,
        last_activity=activity,
    )


# --- mapping ----------------------------------------------------------------------------------


def trades_map(
    ctx: ImportContext, rows: list[dict[str, Any]], *, exchange: str
) -> list[dict[str, Any]]:
    ctx.report.read("trades", len(rows))
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    duplicate_ids: dict[int, list[int]] = {}
    for row in rows:  # in id order: the first of a group is its lowest id
        content = tuple((k, v) for k, v in row.items() if k != "id")
        first = kept.setdefault(content, row)
        if first is not row:
            ctx.report.duplicate("trades", f"id {row['id']}", f"id {first['id']}")
            duplicate_ids.setdefault(first["id"], []).append(row["id"])
    return [
        trade_map(ctx, row, exchange=exchange, duplicate_ids=duplicate_ids.get(row["id"], []))
        for row in kept.values()
    ]


def trade_map(
    ctx: ImportContext, row: dict[str, Any], *, exchange: str, duplicate_ids: list[int]
) -> dict[str, Any]:
    key = f"ss-{row['id']}"
    field = FieldReader("trades", key)
    status = field.choice("status", row["status"], {"open": "open", "closed": "closed"})
    quantity = field.positive(Trade, "quantity", row["qty"], "qty")
    entry_price = field.positive(Trade, "entry_price", row["entry_price"], "entry_price")
    pnl = field.number(Trade, "pnl_usd", row["pnl"], "pnl")
    entry_time = field.time(row["timestamp"], "timestamp")
    exit_time = field.optional_time(row["executed_at"], "executed_at")
    exit_price = field.number(Trade, "exit_price", row["exit_price"], "exit_price")
    if status == TradeStatus.CLOSED and (exit_price is None or exit_time is None or pnl is None):
        raise SourceError(f"trades {key}: a closed trade needs exit_price, executed_at and pnl")
    if exit_time is not None and exit_time < entry_time:
        raise SourceError(f"trades {key}: executed_at {exit_time} is before timestamp")
    pnl_pct = None
    if pnl is not None:
        pnl_pct = (Decimal(row["pnl"]) / (row["qty"] * row["entry_price"]) * 100).quantize(
            PCT_PLACES
        )
    legacy: dict[str, Any] = {"table": "trades", "id": row["id"]}
    if duplicate_ids:
        legacy["duplicate_ids"] = duplicate_ids
    legacy.update(_extras(row, TABLES["trades"]))
    symbol = ctx.symbol("trades", key, row["symbol"], legacy)
    return {
        "trade_id": key,
        "symbol": symbol,
        "exchange": exchange,
        "side": field.choice("side", row["side"], SIDES),
        "quantity": quantity,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "entry_time": entry_time,
        "exit_time": exit_time,
        "fees_usd": Decimal(0),
        "pnl_usd": pnl,
        "pnl_pct": pnl_pct,
        "status": status,
        "source": TradeSource.IMPORTED,
        "leverage": Decimal(1),
        "exit_reason": "",
        "entry_tag": "",
        "strategy_data": {"strategy": row["strategy"], "notes": row["notes"], "legacy": legacy},
    }


def positions_map(
    ctx: ImportContext, rows: list[dict[str, Any]], *, exchange: str
) -> list[dict[str, Any]]:
    ctx.report.read("positions", len(rows))
    mapped = []
    for row in rows:
        key = f"id {row['id']}"
        field = FieldReader("positions", key)
        quantity = field.positive(Position, "quantity", row["qty"], "qty")
        legacy: dict[str, Any] = {
            "table": "positions",
            "id": row["id"],
            "updated_at": _json_value(row["updated_at"]),
        }
        legacy.update(_extras(row, TABLES["positions"]))
        mapped.append(
            {
                "symbol": ctx.symbol("positions", key, row["symbol"], legacy),
                "exchange": exchange,
                "side": field.choice("side", row["side"], SIDES),
                "status": PositionStatus.OPEN,
                "quantity": quantity,
                "initial_quantity": quantity,
                "avg_entry_price": field.positive(
                    Position, "avg_entry_price", row["avg_entry_price"], "avg_entry_price"
                ),
                "current_price": field.number(
                    Position, "current_price", row["current_price"], "current_price"
                ),
                "unrealized_pnl_usd": field.number(
                    Position, "unrealized_pnl_usd", row["unrealized_pnl"], "unrealized_pnl"
                )
                or Decimal(0),
                "realized_pnl_usd": Decimal(0),
                "stop_loss": field.number(Position, "stop_loss", row["stop_loss"], "stop_loss"),
                "take_profit": field.number(
                    Position, "take_profit", row["take_profit"], "take_profit"
                ),
                "trailing_stop_pct": None,
                "trailing_stop_price": None,
                "highest_price": None,
                "lowest_price": None,
                "leverage": Decimal(1),
                "opened_at": field.time(row["opened_at"], "opened_at"),
                "closed_at": None,
                "metadata": {"legacy": legacy},
            }
        )
    return _one_per_position(ctx, mapped)


def signals_map(ctx: ImportContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx.report.read("signals", len(rows))
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = f"id {row['id']}"
        field = FieldReader("signals", key)
        legacy: dict[str, Any] = {"table": "signals", "id": row["id"]}
        legacy.update(_extras(row, TABLES["signals"]))
        signal = {
            "symbol": ctx.symbol("signals", key, row["symbol"], legacy),
            "signal_type": row["signal_type"],
            "generated_at": field.time(row["timestamp"], "timestamp"),
            "direction": SIGNAL_DIRECTIONS.get(row["signal_type"], SignalDirection.NEUTRAL),
            "strength": field.number(Signal, "strength", row["strength"], "strength"),
            "price": field.number(Signal, "price", row["price"], "price"),
            "filters_passed": [],
            "filters_failed": [],
            "validated": False,
            "executed": bool(row["acted_on"]),
            "trade_id": None,
            "outcome": SignalOutcome.PENDING,
            "outcome_pnl_usd": None,
            "metadata": {"legacy": legacy},
        }
        # The unified key is (symbol, signal_type, generated_at): a repeat is kept under the
        # first one's legacy.repeats rather than lost or written twice.
        natural = (signal["symbol"], signal["signal_type"], signal["generated_at"])
        first = by_key.setdefault(natural, signal)
        if first is not signal:
            first["metadata"]["legacy"].setdefault("repeats", []).append(
                {**legacy, **_row_json(row)}
            )
            ctx.report.warn("signals", key, f"same symbol, type and time as {_legacy_key(first)}")
    return list(by_key.values())


def balances_map(ctx: ImportContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx.report.read("account_balance", len(rows))
    by_ts: dict[datetime, dict[str, Any]] = {}
    for row in rows:
        key = f"id {row['id']}"
        field = FieldReader("balance_history", key)
        legacy: dict[str, Any] = {"table": "balance_history", "id": row["id"]}
        if row["margin_used"] is None:
            legacy["margin_used"] = None
        legacy.update(_extras(row, TABLES["balance_history"]))
        ts = field.time(row["timestamp"], "timestamp")
        balance = {
            "ts": ts,
            "snapshot_type": SnapshotType.IMPORTED,
            "balance_usd": field.number(AccountBalance, "balance_usd", row["balance"], "balance"),
            "equity_usd": field.number(AccountBalance, "equity_usd", row["equity"], "equity"),
            "margin_used_usd": field.number(
                AccountBalance, "margin_used_usd", row["margin_used"], "margin_used"
            )
            or Decimal(0),
            "available_margin_usd": None,
            "unrealized_pnl_usd": Decimal(0),
            "metadata": {"legacy": legacy},
        }
        first = by_ts.setdefault(ts, balance)
        if first is not balance:
            first["metadata"]["legacy"].setdefault("repeats", []).append(
                {**legacy, **_row_json(row)}
            )
            ctx.report.warn("balance_history", key, f"same timestamp as {_legacy_key(first)}")
    return list(by_ts.values())


# --- shared bits ------------------------------------------------------------------------------


def _one_per_position(ctx: ImportContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most one open position per (symbol, exchange, side): a later row is kept in the
    first one's legacy.repeats and warned, never written over it."""
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        first = by_key.setdefault((row["symbol"], row["exchange"], row["side"]), row)
        if first is not row:
            legacy = row["metadata"]["legacy"]
            first["metadata"]["legacy"].setdefault("repeats", []).append(legacy)
            ctx.report.warn("positions", _legacy_key(row), f"repeats {_legacy_key(first)}")
    return list(by_key.values())


def _legacy_key(row: dict[str, Any]) -> str:
    return f"id {row['metadata']['legacy']['id']}"


def _extras(row: dict[str, Any], mapped: tuple[str, ...]) -> dict[str, Any]:
    """Columns a newer legacy schema added: kept, not dropped."""
    return {k: _json_value(v) for k, v in row.items() if k not in mapped}


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in row.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
