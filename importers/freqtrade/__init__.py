"""Import a freqtrade database (SQLite or PostgreSQL) into the unified schema.

``freqtrade_job`` reads the source and returns the ImportJob that ``importers.core.import_run``
runs (one transaction, --dry-run rollback, progress, the report and its audit event, the bot
registered through ``bot_ensure`` when missing). Its work writes everything of one source for
one bot: trades (``ft-<id>``), their orders (``ft-<order row id>``) and fills, open trades'
positions, an opening balance, and the bot-level context (pairlocks, KeyValueStore) in the
bot's metadata. It writes set-based, a chunk of trades at a time (writes.py), and is
idempotent: every row is keyed by its legacy id and a row equal to the stored one is left
alone. Mapping rules: mapping.py; reading: source.py.
"""

from concurrent.futures import Future
from datetime import datetime
from decimal import Decimal
from typing import Any

from importers.core import BotSpec, ImportContext, ImportJob, SourceError
from importers.freqtrade.mapping import USD, MappedTrade, legacy, legacy_value, map_trade
from importers.freqtrade.source import FreqtradeDatabase, read_database, utc
from importers.freqtrade.writes import ChunkWriter, positions_write, staging_create
from importers.guard import last_activity, positions_closed_unknown
from trading.models import Bot, SnapshotType
from trading.services.ingest import UpsertCounts, balance_upsert_many

__all__ = [
    "CHUNK_TRADES",
    "COMMAND",
    "FreqtradeDatabase",
    "bot_defaults",
    "freqtrade_import",
    "freqtrade_job",
    "read_database",
]

COMMAND = "import_freqtrade"
CHUNK_TRADES = 10_000  # trades per chunk: staged by COPY, then one statement per table


def bot_defaults(database: FreqtradeDatabase) -> dict[str, str]:
    """What a bot registered for this database is: its strategy, exchange and stake currency
    (the most frequent, should the database hold several)."""

    def most(column: str, default: str) -> str:
        seen: dict[str, int] = {}
        for trade in database.trades:
            value = trade.get(column)
            if value:
                seen[str(value)] = seen.get(str(value), 0) + 1
        return max(seen, key=lambda k: seen[k]) if seen else default

    return {
        "strategy_type": most("strategy", "freqtrade"),
        "exchange": most("exchange", ""),
        "base_currency": most("stake_currency", "USDT"),
    }


def freqtrade_job(
    *,
    source: str,
    bot_id: str,
    initial_capital: Decimal | None = None,
    name: str = "",
    exchange: str = "",
) -> ImportJob:
    """The import of one freqtrade database for ``bot_id``; the source is read here, before any
    write. A bot that does not exist yet is registered, which needs ``initial_capital``, and an
    exchange: ``exchange`` when given, else the one its trades name (freqtrade keeps the
    exchange in its configuration, not in the database, so a database without trades needs
    ``exchange``)."""
    database = read_database(source)
    existing = Bot.objects.filter(pk=bot_id).values_list("initial_capital_usd", flat=True).first()
    capital = initial_capital if initial_capital is not None else existing
    if capital is None:
        raise SourceError(
            f"bot {bot_id} does not exist: --initial-capital is needed to register it"
        )
    defaults = bot_defaults(database)
    exchange = exchange.strip() or defaults["exchange"]
    if existing is None and not exchange:
        raise SourceError(
            f"bot {bot_id} does not exist and {database.location} holds no trade naming its"
            " exchange: --exchange is needed to register it"
        )
    spec = BotSpec(
        bot_id=bot_id,
        name=name or bot_id,
        strategy_type=defaults["strategy_type"],
        exchange=exchange,
        base_currency=defaults["base_currency"],
        initial_capital_usd=capital,
        mode=Bot._meta.get_field("mode").get_default(),  # as registered before core: paper
    )

    def work(ctx: ImportContext) -> None:
        freqtrade_import(ctx=ctx, database=database, initial_capital=initial_capital)

    activity = last_activity(
        [
            *(t.get(name) for t in database.trades for name in ("open_date", "close_date")),
            *(row.get("timestamp") for row in database.wallet_history),
        ]
    )
    return ImportJob(
        command=COMMAND, source=database.location, bot=spec, work=work, last_activity=activity
    )


def freqtrade_import(
    *, ctx: ImportContext, database: FreqtradeDatabase, initial_capital: Decimal | None = None
) -> None:
    """Write ``database`` for ``ctx.bot``, counting into ``ctx.report``.

    ``initial_capital`` adds an opening account_balance row (imported) at the first trade's
    open_date: the equity the bot started from, which the realized curve starts from too.
    """
    bot, report = ctx.bot, ctx.report
    if initial_capital is not None and initial_capital != bot.initial_capital_usd:
        report.warn(
            "bots",
            bot.bot_id,
            f"--initial-capital {initial_capital} differs from its initial capital"
            f" {bot.initial_capital_usd}; the bot keeps its own",
        )
    trades = database.trades
    for name in ("trades", "orders", "order_fills", "positions"):
        report.table(name)  # the report lists them in this order, even when empty
    staging_create()
    positions: set[tuple[str, str, str]] = set()
    bar = ctx.progress("trades", len(trades))
    writer = ChunkWriter(bot=bot, run_id=ctx.run_id)
    pending: tuple[Future[dict[str, UpsertCounts]], list[MappedTrade]] | None = None
    try:
        for start in range(0, len(trades), CHUNK_TRADES):
            chunk = trades[start : start + CHUNK_TRADES]
            mapped = [
                map_trade(
                    t, database.orders.get(t["id"], []), database.custom_data.get(t["id"], [])
                )
                for t in chunk
            ]
            _positions_once(mapped, positions)
            _read(ctx, mapped)
            if pending is not None:  # the previous chunk was written while this one was mapped
                _written(ctx, writer, *pending)
                bar.advance(len(pending[1]))
            pending = (
                writer.submit(
                    trades=[m.trade for m in mapped], orders=[o for m in mapped for o in m.orders]
                ),
                mapped,
            )
        if pending is not None:
            _written(ctx, writer, *pending)
            bar.advance(len(pending[1]))
    finally:
        writer.close()
        bar.close()
    known = {t["id"] for t in trades}
    for trade_id in sorted(set(database.orders) - known):
        report.warn(
            "orders",
            f"ft_trade_id {trade_id}",
            f"{len(database.orders[trade_id])} order(s) of a trade that is not in trades;"
            " not imported",
        )
    _write_balances(ctx, database=database, initial_capital=initial_capital)
    _write_bot_context(ctx, database=database)


def _positions_once(mapped: list[MappedTrade], seen: set[tuple[str, str, str]]) -> None:
    """freqtrade keeps one open trade per pair and side; a second has no position of its own."""
    for m in mapped:
        if m.position is not None:
            key = (m.position["symbol"], m.position["exchange"], m.position["side"])
            if key in seen:
                m.warnings.append(
                    (
                        "positions",
                        m.trade["trade_id"],
                        f"a second open trade on {key}; no position of its own",
                    )
                )
                m.position = None
            seen.add(key)


def _read(ctx: ImportContext, mapped: list[MappedTrade]) -> None:
    report = ctx.report
    for m in mapped:
        for table, key, message in m.warnings:
            report.warn(table, key, message)
    ctx.trade_keys.update(str(m.trade["trade_id"]) for m in mapped)
    report.read("trades", len(mapped))
    report.read("orders", sum(len(m.orders) for m in mapped))
    report.read("order_fills", sum(m.fills for m in mapped))
    report.read("positions", sum(1 for m in mapped if m.position is not None))


def _written(
    ctx: ImportContext,
    writer: ChunkWriter,
    future: "Future[dict[str, UpsertCounts]]",
    mapped: list[MappedTrade],
) -> None:
    """Count a written chunk; then its positions, which need the connection to itself."""
    written = writer.result(future)
    for table, counts in written.items():
        ctx.report.add(table, counts)
    if any(counts.created or counts.updated for counts in written.values()):
        ctx.touched(m.trade for m in mapped)  # the daily rollups are redone from its day on
    counts, closed = positions_write(
        bot=ctx.bot,
        positions=positions_closed_unknown(
            ctx, [m.position for m in mapped if m.position is not None]
        ),
        open_trade_ids=[m.trade["trade_id"] for m in mapped if m.trade["status"] == "open"],
    )
    ctx.report.add("positions", counts)
    ctx.report.table("positions").updated += closed


def _write_balances(
    ctx: ImportContext, *, database: FreqtradeDatabase, initial_capital: Decimal | None
) -> None:
    rows: list[dict[str, Any]] = []
    if initial_capital is not None and database.trades:
        first = min(filter(None, (utc(t.get("open_date")) for t in database.trades)))
        capital = initial_capital.quantize(USD)
        rows.append(_balance(first, capital, {"opening_balance": "--initial-capital"}))
    # freqtrade's wallet_history: one row per currency per snapshot; one balance per snapshot,
    # valued in the stake currency (total_quote), each currency's row kept as it was.
    snapshots: dict[datetime, list[dict[str, Any]]] = {}
    for row in database.wallet_history:
        moment = utc(row.get("timestamp"))
        if moment is not None:
            snapshots.setdefault(moment, []).append(row)
    for moment, currencies in sorted(snapshots.items()):
        total = sum(
            (Decimal(repr(c["total_quote"])) for c in currencies if c.get("total_quote")),
            Decimal(0),
        )
        rows.append(
            _balance(
                moment,
                total.quantize(USD),
                {"wallet_history": [legacy(c, frozenset()) for c in currencies]},
            )
        )
    ctx.report.read("account_balance", len(rows))
    if rows:
        ctx.write("account_balance", balance_upsert_many, rows)


def _balance(moment: datetime | None, amount: Decimal, legacy_data: Any) -> dict[str, Any]:
    return {
        "ts": moment,
        "snapshot_type": SnapshotType.IMPORTED,
        "balance_usd": amount,
        "equity_usd": amount,
        "margin_used_usd": Decimal(0),
        "available_margin_usd": None,
        "unrealized_pnl_usd": Decimal(0),
        "metadata": {"legacy": legacy_data, "source": "freqtrade"},
    }


def _write_bot_context(ctx: ImportContext, *, database: FreqtradeDatabase) -> None:
    """pairlocks and KeyValueStore have no table of their own: the bot's metadata keeps them."""
    context = {
        "pairlocks": [legacy(row, frozenset()) for row in database.pairlocks],
        "key_value_store": {
            str(row["key"]): {
                k: legacy_value(v)
                for k, v in row.items()
                if k not in ("id", "key") and v is not None
            }
            for row in database.key_values
        },
    }
    bot, tally = ctx.bot, ctx.report.table("bot_context")
    tally.read += 1
    fresh = Bot.objects.get(pk=bot.pk)
    if fresh.metadata.get("freqtrade") == context:
        tally.already_present += 1
        return
    fresh.metadata = {**fresh.metadata, "freqtrade": context}
    Bot.objects.filter(pk=bot.pk).update(metadata=fresh.metadata)
    bot.metadata = fresh.metadata
    tally.updated += 1
