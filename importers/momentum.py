"""Momentum: its SQLite file (``data/trading.db``), opened read-only in place.

Mapping (shared/legacy/README.md): ``trade_id`` is kept; ``direction`` is the side; REALs go
through their shortest text (``repr``) and are rounded half-even to the column's scale; times
come in three spellings (``...Z``, ``...+00:00``, naive), all UTC; ``metadata`` JSON text is
the trade's strategy_data (broken JSON kept as ``{"legacy_raw": text}`` and warned). A trade
without exit_time is open. positions -> open positions (trailing_stop is a price);
equity_snapshots (epoch ms) -> account_balance rows of type ``imported`` (cash -> balance).
"""

import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from importers.core import (
    BotSpec,
    FieldReader,
    ImportContext,
    ImportJob,
    SourceError,
    legacy_json,
    sqlite_read_only,
    utc_from_epoch_ms,
)
from importers.guard import last_activity, positions_closed_unknown
from trading.models import (
    AccountBalance,
    Position,
    PositionStatus,
    SnapshotType,
    Trade,
    TradeSide,
    TradeSource,
    TradeStatus,
)
from trading.services.ingest import (
    balance_upsert_many,
    position_upsert_many,
    trade_derived_fields,
    trade_upsert_many,
)

COMMAND = "import_momentum"
BOT_ID = "momentum_001"
TABLES: dict[str, tuple[str, ...]] = {
    "trades": (
        "id",
        "trade_id",
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "exit_price",
        "entry_time",
        "exit_time",
        "pnl_usd",
        "pnl_pct",
        "exit_reason",
        "metadata",
    ),
    "positions": (
        "symbol",
        "direction",
        "quantity",
        "entry_price",
        "trailing_stop",
        "highest_price",
        "opened_at",
    ),
    "equity_snapshots": ("ts", "equity", "cash"),
}
ORDER_BY = {"trades": "id", "positions": "symbol", "equity_snapshots": "ts"}
SIDES = {"long": TradeSide.LONG, "short": TradeSide.SHORT}


def source_read(path: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the three tables; SourceError names an unreadable file, table or column."""
    file = Path(path)
    if not file.is_file():
        raise SourceError(f"{path}: no such SQLite file")
    tables: dict[str, list[dict[str, Any]]] = {}
    with sqlite_read_only(path) as conn:
        try:
            for table, required in TABLES.items():
                columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                if not columns:
                    raise SourceError(f"{path}: table {table} is missing")
                missing = [name for name in required if name not in columns]
                if missing:
                    raise SourceError(f"{path}: table {table} has no column {', '.join(missing)}")
                sql = f"SELECT * FROM {table} ORDER BY {ORDER_BY[table]}"  # noqa: S608
                cursor = conn.execute(sql)
                names = [d[0] for d in cursor.description]
                tables[table] = [dict(zip(names, row, strict=True)) for row in cursor]
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{path}: cannot read: {exc}") from exc
    return tables


def momentum_job(
    *,
    source: str,
    exchange: str = "binance",
    initial_capital_usd: Decimal | None = None,
    bot_id: str = BOT_ID,
) -> ImportJob:
    """The import of one Momentum SQLite file. The source is read here, before any write."""
    data = source_read(source)
    if initial_capital_usd is None:
        if not data["equity_snapshots"]:
            raise SourceError("equity_snapshots is empty: give --initial-capital for the bot")
        first = FieldReader("equity_snapshots", f"ts {data['equity_snapshots'][0]['ts']}")
        initial_capital_usd = first.positive(
            AccountBalance, "equity_usd", data["equity_snapshots"][0]["equity"], "equity"
        )
    spec = BotSpec(
        bot_id=bot_id,
        name="Momentum",
        strategy_type="trend_following",
        exchange=exchange,
        initial_capital_usd=initial_capital_usd,
        metadata={"legacy_source": "momentum"},
    )

    def work(ctx: ImportContext) -> None:
        trades = trades_map(ctx, data["trades"], exchange=exchange)
        ctx.write("trades", trade_upsert_many, trades, keys=lambda r: r["trade_id"])
        positions = positions_map(ctx, data["positions"], exchange=exchange)
        positions = positions_closed_unknown(ctx, positions)
        ctx.write("positions", position_upsert_many, positions, keys=_position_key)
        balances = balances_map(ctx, data["equity_snapshots"])
        ctx.write("account_balance", balance_upsert_many, balances, keys=_balance_key)

    return ImportJob(
        command=COMMAND, source=source, bot=spec, work=work, last_activity=_activity(data)
    )


def _activity(data: dict[str, list[dict[str, Any]]]) -> datetime | None:
    """The source's latest time: a trade's entry or exit, a position opened, a snapshot."""
    snapshots = []
    for row in data["equity_snapshots"]:
        try:
            snapshots.append(utc_from_epoch_ms(row["ts"]))
        except ValueError:
            continue  # the mapping names it
    return last_activity(
        [
            *(row[name] for row in data["trades"] for name in ("entry_time", "exit_time")),
            *(row["opened_at"] for row in data["positions"]),
            *snapshots,
        ]
    )


# --- mapping ----------------------------------------------------------------------------------


def trades_map(
    ctx: ImportContext, rows: list[dict[str, Any]], *, exchange: str
) -> list[dict[str, Any]]:
    ctx.report.read("trades", len(rows))
    return [trade_map(ctx, row, exchange=exchange) for row in rows]


def trade_map(ctx: ImportContext, row: dict[str, Any], *, exchange: str) -> dict[str, Any]:
    key = str(row["trade_id"])
    field = FieldReader("trades", key)
    entry_time = field.time(row["entry_time"], "entry_time")
    exit_time = field.optional_time(row["exit_time"], "exit_time")
    if exit_time is not None and exit_time < entry_time:
        raise field.fail("exit_time", f"{row['exit_time']!r} is before entry_time")
    metadata, broken = legacy_json(row["metadata"])
    if broken:
        ctx.report.warn("trades", key, f"metadata is not valid JSON ({broken}): kept as legacy_raw")
    strategy_data = metadata if isinstance(metadata, dict) else {"metadata": metadata}
    legacy: dict[str, Any] = {"table": "trades", "id": row["id"]}
    legacy.update({k: v for k, v in row.items() if k not in TABLES["trades"]})
    if "legacy" in strategy_data:  # the metadata's own "legacy" key: kept, beside ours
        legacy["metadata_legacy"] = strategy_data.pop("legacy")
    trade = {
        "trade_id": key,
        "symbol": ctx.symbol("trades", key, row["symbol"], legacy),
        "exchange": exchange,
        "side": field.choice("direction", row["direction"], SIDES),
        "quantity": field.positive(Trade, "quantity", row["quantity"], "quantity"),
        "entry_price": field.positive(Trade, "entry_price", row["entry_price"], "entry_price"),
        "exit_price": field.number(Trade, "exit_price", row["exit_price"], "exit_price"),
        "entry_time": entry_time,
        "exit_time": exit_time,
        "fees_usd": Decimal(0),
        "pnl_usd": field.number(Trade, "pnl_usd", row["pnl_usd"], "pnl_usd"),
        "pnl_pct": field.number(Trade, "pnl_pct", row["pnl_pct"], "pnl_pct"),
        "status": TradeStatus.OPEN if exit_time is None else TradeStatus.CLOSED,
        "source": TradeSource.IMPORTED,
        "leverage": Decimal(1),
        "exit_reason": ctx.text("trades", key, "exit_reason", row["exit_reason"], legacy),
        "entry_tag": "",
        "strategy_data": {**strategy_data, "legacy": legacy},
    }
    if trade["status"] == TradeStatus.CLOSED:
        if trade["exit_price"] is None:
            raise field.fail("exit_price", "a closed trade (it has exit_time) needs one")
        if trade["pnl_usd"] is None:
            legacy_pct = trade["pnl_pct"]
            trade_derived_fields(trade)
            trade["pnl_pct"] = legacy_pct if legacy_pct is not None else trade["pnl_pct"]
            legacy["pnl_usd"] = None
            ctx.report.warn("trades", key, f"no pnl_usd: computed {trade['pnl_usd']}")
    if trade["pnl_pct"] is None and trade["pnl_usd"] is not None:
        pct = trade["pnl_usd"] / (trade["quantity"] * trade["entry_price"]) * 100
        trade["pnl_pct"] = field.number(Trade, "pnl_pct", pct, "pnl_pct")
        legacy["pnl_pct"] = None
    return trade


def positions_map(
    ctx: ImportContext, rows: list[dict[str, Any]], *, exchange: str
) -> list[dict[str, Any]]:
    ctx.report.read("positions", len(rows))
    mapped: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = str(row["symbol"])
        field = FieldReader("positions", key)
        legacy: dict[str, Any] = {"table": "positions", "symbol": key}
        legacy.update({k: v for k, v in row.items() if k not in TABLES["positions"]})
        quantity = field.positive(Position, "quantity", row["quantity"], "quantity")
        position = {
            "symbol": ctx.symbol("positions", key, key, legacy),
            "exchange": exchange,
            "side": field.choice("direction", row["direction"], SIDES),
            "status": PositionStatus.OPEN,
            "quantity": quantity,
            "initial_quantity": quantity,
            "avg_entry_price": field.positive(
                Position, "avg_entry_price", row["entry_price"], "entry_price"
            ),
            "current_price": None,
            "unrealized_pnl_usd": Decimal(0),
            "realized_pnl_usd": Decimal(0),
            "stop_loss": None,
            "take_profit": None,
            "trailing_stop_pct": None,
            "trailing_stop_price": field.number(
                Position, "trailing_stop_price", row["trailing_stop"], "trailing_stop"
            ),
            "highest_price": field.number(
                Position, "highest_price", row["highest_price"], "highest_price"
            ),
            "lowest_price": None,
            "leverage": Decimal(1),
            "opened_at": field.time(row["opened_at"], "opened_at"),
            "closed_at": None,
            "metadata": {"legacy": legacy},
        }
        mapped[(position["symbol"], position["side"])] = position  # symbol is the legacy key
    return list(mapped.values())


def balances_map(ctx: ImportContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx.report.read("account_balance", len(rows))
    mapped = []
    for row in rows:
        key = f"ts {row['ts']}"
        field = FieldReader("equity_snapshots", key)
        try:
            ts = utc_from_epoch_ms(row["ts"])
        except ValueError as exc:
            raise field.fail("ts", str(exc)) from exc
        legacy: dict[str, Any] = {"table": "equity_snapshots", "ts": row["ts"]}
        legacy.update({k: v for k, v in row.items() if k not in TABLES["equity_snapshots"]})
        equity = field.number(AccountBalance, "equity_usd", row["equity"], "equity")
        cash = field.number(AccountBalance, "balance_usd", row["cash"], "cash")
        if equity is None or cash is None:
            raise field.fail("equity" if equity is None else "cash", "missing")
        mapped.append(
            {
                "ts": ts,
                "snapshot_type": SnapshotType.IMPORTED,
                "balance_usd": cash,
                "equity_usd": equity,
                "margin_used_usd": Decimal(0),
                "available_margin_usd": None,
                "unrealized_pnl_usd": Decimal(0),
                "metadata": {"legacy": legacy},
            }
        )
    return mapped


def _position_key(row: dict[str, Any]) -> str:
    return str(row["metadata"]["legacy"]["symbol"])


def _balance_key(row: dict[str, Any]) -> str:
    return f"ts {row['metadata']['legacy']['ts']}"
