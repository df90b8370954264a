"""A freqtrade backtest result stored as a backtest run (issue 18): its trades with
source = backtest, linked to one run of mode backtest, so that it can be reconciled against a
live run (analytics.selectors.reconcile).

freqtrade writes a result (freqtrade/optimize/optimize_reports/bt_storage.py) as a JSON file,
``{"strategy": {<name>: {..., "trades": [...]}}, "strategy_comparison": [...]}`` (a
``.meta.json`` beside it), or, since 2025, as a zip holding that JSON under the zip's own name
with ``.json`` (plus the configuration, the strategy's source and parameters, market-change and
analysis files). Each trade is ``freqtrade.data.btanalysis.BT_DATA_COLUMNS``: pair, amount,
open_date, close_date, open_rate, close_rate, fee_open, fee_close, profit_abs (net of fees,
in the stake currency), exit_reason, enter_tag, leverage, is_short, open_timestamp...

Mapping: one trade per result trade; trade_id ``bt-<backtest key>-<pair>-<open ms>-<l|s>``, so
importing the same result again writes nothing new; quantity = amount, prices the rates,
pnl_usd = profit_abs (the stake currency taken as USD, as the legacy importers do), fees_usd =
amount x open_rate x fee_open + amount x close_rate x fee_close, rounded half-even to the cent's
millionth as every USD column. The run spans the trades' first entry to last exit; its
natural key here is (bot, strategy, backtest_run_start_ts), kept in its metadata.
"""

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from django.db import transaction

from audit.services.records import system_event_record
from importers.core import SourceError, decimal_from_real, utc_parse
from trading.models import Bot, BotRun, RunMode, RunStatus, TradeSource, TradeStatus
from trading.services.ingest import RowsRefused, trade_derived_fields, trade_upsert_many

USD = Decimal("1e-8")
QUANTITY = Decimal("1e-10")
COMPONENT = "importers.freqtrade_backtest"


def result_load(path: Path) -> dict[str, Any]:
    """The result's stats (``{"strategy": ..., ...}``) from a .json or a .zip of freqtrade's."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = f"{path.stem}.json"
                if name not in archive.namelist():
                    found = [
                        n
                        for n in archive.namelist()
                        if n.endswith(".json")
                        and not n.endswith(("_config.json", ".meta.json"))
                        and "_" not in n.removeprefix(path.stem)
                    ]
                    if len(found) != 1:
                        raise SourceError(f"{path}: no backtest result JSON in the zip")
                    name = found[0]
                stats = json.loads(archive.read(name))
        else:
            stats = json.loads(path.read_text())
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: not a freqtrade backtest result: {exc}") from exc
    if not isinstance(stats, dict) or not isinstance(stats.get("strategy"), dict):
        raise SourceError(f"{path}: no 'strategy' object: not a freqtrade backtest result")
    return stats


@dataclass(frozen=True)
class BacktestImport:
    run: BotRun
    created: int
    updated: int
    unchanged: int


def _number(value: Any, quantum: Decimal) -> Decimal | None:
    try:
        return decimal_from_real(value, quantum)
    except ValueError:
        return None


def _usd(value: Any, name: str, where: str) -> Decimal:
    number = _number(value, USD)
    if number is None:
        raise SourceError(f"{where}: {name} is missing or not a number ({value!r})")
    return number


def _positive(value: Any, name: str, where: str) -> Decimal:
    number = _number(value, QUANTITY)
    if number is None or number <= 0:
        raise SourceError(f"{where}: {name} must be a positive number (got {value!r})")
    return number


def _time(value: Any, name: str, where: str) -> datetime:
    try:
        moment = utc_parse(value)
    except ValueError:
        moment = None
    if moment is None:
        raise SourceError(f"{where}: {name} is not a time ({value!r})")
    return moment


def trade_rows(trades: list[dict[str, Any]], *, key: str, exchange: str) -> list[dict[str, Any]]:
    """The result's closed trades as rows for trade_upsert_many (source backtest)."""
    rows = []
    for index, raw in enumerate(trades):
        where = f"trade {index} ({raw.get('pair')} {raw.get('open_date')})"
        if raw.get("is_open"):
            continue  # a trade the backtest left open at its end: not a result
        amount = _positive(raw.get("amount"), "amount", where)
        entry = _positive(raw.get("open_rate"), "open_rate", where)
        exit_ = _positive(raw.get("close_rate"), "close_rate", where)
        fee_open = _number(raw.get("fee_open") or 0, Decimal("1e-12")) or Decimal(0)
        fee_close = _number(raw.get("fee_close") or 0, Decimal("1e-12")) or Decimal(0)
        fees = (amount * entry * fee_open + amount * exit_ * fee_close).quantize(
            USD, rounding=ROUND_HALF_EVEN
        )
        short = bool(raw.get("is_short"))
        opened = _time(raw.get("open_date"), "open_date", where)
        pair = str(raw.get("pair") or "")
        if not pair:
            raise SourceError(f"{where}: pair is missing")
        stamp = raw.get("open_timestamp") or int(opened.timestamp() * 1000)
        row = {
            "trade_id": f"bt-{key}-{pair}-{stamp}-{'s' if short else 'l'}"[:128],
            "symbol": pair,
            "exchange": exchange,
            "side": "short" if short else "long",
            "quantity": amount,
            "entry_price": entry,
            "exit_price": exit_,
            "entry_time": opened,
            "exit_time": _time(raw.get("close_date"), "close_date", where),
            "fees_usd": fees,
            "pnl_usd": _usd(raw.get("profit_abs"), "profit_abs", where),
            "status": TradeStatus.CLOSED,
            "source": TradeSource.BACKTEST,
            "leverage": _number(raw.get("leverage") or 1, Decimal("1e-6")) or Decimal(1),
            "exit_reason": str(raw.get("exit_reason") or "")[:255],
            "entry_tag": str(raw.get("enter_tag") or "")[:255],
            "strategy_data": {
                "profit_ratio": raw.get("profit_ratio"),
                "stake_amount": raw.get("stake_amount"),
                "fee_open": raw.get("fee_open"),
                "fee_close": raw.get("fee_close"),
            },
        }
        rows.append(trade_derived_fields(row))
    return rows


def _strategy(stats: dict[str, Any], name: str | None, path: Path) -> tuple[str, dict[str, Any]]:
    strategies = stats["strategy"]
    if name is None:
        if len(strategies) != 1:
            raise SourceError(
                f"{path}: holds {len(strategies)} strategies ({', '.join(sorted(strategies))}): "
                "name one with --strategy"
            )
        name = next(iter(strategies))
    if name not in strategies:
        raise SourceError(f"{path}: no strategy {name!r} ({', '.join(sorted(strategies))})")
    return name, strategies[name]


def backtest_import(
    *, path: Path, bot: Bot, strategy: str | None = None, exchange: str | None = None
) -> BacktestImport:
    """Store the result at ``path`` for ``bot`` as one backtest run; nothing is written when a
    trade is refused (SourceError names it). Importing the same result again finds its run."""
    stats = result_load(path)
    name, result = _strategy(stats, strategy, path)
    key = f"{name}-{result.get('backtest_run_start_ts') or path.stem}"
    rows = trade_rows(list(result.get("trades") or []), key=key, exchange=exchange or bot.exchange)
    if not rows:
        raise SourceError(f"{path}: strategy {name} has no closed trades")
    first = min(r["entry_time"] for r in rows)
    last = max(r["exit_time"] for r in rows)
    with transaction.atomic():
        Bot.objects.select_for_update().only("bot_id").get(pk=bot.pk)
        run = BotRun.objects.filter(
            bot=bot, mode=RunMode.BACKTEST, metadata__backtest_key=key
        ).first()
        if run is None:
            started = first
            while BotRun.objects.filter(bot=bot, started_at=started).exists():
                started += timedelta(microseconds=1)
            run = BotRun.objects.create(
                bot=bot,
                mode=RunMode.BACKTEST,
                status=RunStatus.CLOSED,
                started_at=started,
                ended_at=max(started, last),
                end_reason="backtest imported",
                strategy_name=name,
                strategy_params={
                    k: result[k]
                    for k in ("timeframe", "stake_amount", "max_open_trades", "stoploss")
                    if k in result
                },
                code_version=str(stats.get("freqtrade_version") or ""),
                metadata={
                    "backtest_key": key,
                    "source": path.name,
                    "stake_currency": result.get("stake_currency"),
                    "starting_balance": result.get("starting_balance"),
                    "backtest_start": result.get("backtest_start"),
                    "backtest_end": result.get("backtest_end"),
                },
            )
        for row in rows:
            row["run_id"] = run.pk
        try:
            counts = trade_upsert_many(bot=bot, rows=rows)
        except RowsRefused as exc:
            index, field, reason = exc.errors[0]
            raise SourceError(f"trade {rows[index]['trade_id']}: {field}: {reason}") from exc
        system_event_record(
            component=COMPONENT,
            event_type="backtest_imported",
            message=f"{path.name}: {name}, {len(rows)} trades into run {run.pk} "
            f"({counts.created} created, {counts.updated} updated)",
            bot=bot,
            details={"run_id": run.pk, "source": path.name, **counts.as_json()},
        )
    return BacktestImport(run, counts.created, counts.updated, counts.unchanged)
