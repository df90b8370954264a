"""import_freqtrade against the sample database and freqtrade's own figures for it.

Every expected number is read at test time from the source (freqtrade.sqlite) or from
freqtrade.oracle.json, never copied by hand, so the same tests hold for another freqtrade
database with its oracle (FREQTRADE_SOURCE / FREQTRADE_ORACLE override the paths).
"""

import json
import os
import shutil
import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.selectors import bot_breakdown, bot_summary
from audit.models import ChangeAction, ChangeLog, SystemEvent
from importers.management.commands.import_freqtrade import Command
from tests.importers import freqtrade_support as ft
from tests.importers.legacy_support import LEGACY
from trading.models import AccountBalance, Bot, Order, OrderFill, Position, Trade

# FREQTRADE_SOURCE / FREQTRADE_ORACLE: another freqtrade database and freqtrade's figures for it.
SOURCE = Path(os.environ.get("FREQTRADE_SOURCE", LEGACY / "freqtrade.sqlite"))
ORACLE_PATH = Path(os.environ.get("FREQTRADE_ORACLE", LEGACY / "freqtrade.oracle.json"))
BOT_ID = "ft_sample"
FLOAT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def oracle() -> dict[str, Any]:
    return json.loads(ORACLE_PATH.read_text())


def run_import(source: Path | str = SOURCE, *extra: str, capital: float | None = None) -> str:
    out = StringIO()
    # The sample's trades are of 2025: --stale-after never keeps its open positions open, as
    # the mapping these tests pin makes them (staleness: tests/importers/test_live_bots.py).
    args = ["--source", str(source), "--bot-id", BOT_ID, "--no-progress", "--stale-after"]
    args += ["never", *extra]
    if capital is not None:
        args += ["--initial-capital", repr(capital)]
    call_command(Command(), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def imported(db: None, oracle: dict[str, Any]) -> Bot:
    run_import(capital=oracle["starting_balance"])
    return Bot.objects.get(pk=BOT_ID)


def source(sql: str, path: Path = SOURCE) -> list[dict[str, Any]]:
    return ft.source_rows(path, sql)


def d(value: float, places: str) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_EVEN)


# --- counts and money ------------------------------------------------------------------------


def test_counts_equal_the_oracle(imported: Bot, oracle: dict[str, Any]) -> None:
    counts = oracle["counts"]
    trades = Trade.objects.filter(bot=imported)
    assert trades.count() == counts["trades"]
    assert trades.filter(status="closed").count() == counts["closed"]
    assert trades.filter(status="open").count() == counts["open"]
    assert trades.filter(side="short").count() == counts["short_trades"]
    assert (
        trades.filter(strategy_data__legacy__trading_mode="FUTURES").count()
        == (counts["futures_trades"])
    )
    assert Order.objects.filter(bot=imported).count() == counts["orders"]
    filled_orders = source("SELECT count(*) AS n FROM orders WHERE filled > 0")[0]["n"]
    assert OrderFill.objects.filter(order__bot=imported).count() == filled_orders
    partial = trades.filter(status="closed", strategy_data__exit_orders_filled__gte=2).count()
    partial += trades.filter(status="open", strategy_data__exit_orders_filled__gte=1).count()
    assert partial == counts["trades_with_partial_exit"]
    assert Position.objects.filter(bot=imported).exclude(status="closed").count() == counts["open"]
    assert trades.filter(source="imported").count() == counts["trades"]


def test_pnl_is_close_profit_abs_and_sums_to_the_cent(imported: Bot) -> None:
    rows = source("SELECT id, close_profit_abs FROM trades WHERE is_open = 0")
    stored = dict(
        Trade.objects.filter(bot=imported, status="closed").values_list("trade_id", "pnl_usd")
    )
    assert stored == {f"ft-{r['id']}": d(r["close_profit_abs"], "1e-8") for r in rows}
    float_sum = sum(r["close_profit_abs"] for r in rows)
    assert abs(sum(stored.values()) - Decimal(repr(float_sum))) < Decimal("0.005")
    assert not Trade.objects.filter(bot=imported, status="open", pnl_usd__isnull=False).exists()


def test_a_partial_exit_trade_keeps_its_original_size_and_average_exit(imported: Bot) -> None:
    (row,) = source(
        "SELECT t.* FROM trades t WHERE t.is_open = 0 AND (SELECT count(*) FROM orders o"
        " WHERE o.ft_trade_id = t.id AND o.ft_order_side <> CASE WHEN t.is_short THEN 'sell'"
        " ELSE 'buy' END) = 2 ORDER BY t.id LIMIT 1"
    )
    orders = source(f"SELECT * FROM orders WHERE ft_trade_id = {row['id']} ORDER BY id")  # noqa: S608
    entry_side = "sell" if row["is_short"] else "buy"
    entries = [o for o in orders if o["ft_order_side"] == entry_side]
    exits = [o for o in orders if o["ft_order_side"] != entry_side]
    trade = Trade.objects.get(bot=imported, trade_id=f"ft-{row['id']}")
    quantity = sum((Decimal(repr(o["filled"])) for o in entries), Decimal(0))
    assert trade.quantity == quantity
    assert trade.quantity > d(row["amount"], "1e-10")  # amount is what the last exit closed
    exit_value = sum(
        (Decimal(repr(o["filled"])) * Decimal(repr(o["average"])) for o in exits), Decimal(0)
    )
    exit_qty = sum((Decimal(repr(o["filled"])) for o in exits), Decimal(0))
    assert trade.exit_price == (exit_value / exit_qty).quantize(Decimal("1e-10"))
    assert trade.exit_price != d(row["close_rate"], "1e-10")
    fees = sum(
        (
            Decimal(repr(o["cost"]))
            * Decimal(repr(row["fee_open" if o in entries else "fee_close"]))
            for o in orders
        ),
        Decimal(0),
    )
    assert trade.fees_usd == fees.quantize(Decimal("1e-8"))
    assert trade.pnl_usd == d(row["close_profit_abs"], "1e-8")
    assert trade.pnl_pct == (trade.pnl_usd / (quantity * trade.entry_price) * 100).quantize(
        Decimal("1e-6")
    )
    assert trade.exit_reason == row["exit_reason"]
    assert trade.strategy_data["legacy"]["realized_profit"] == row["realized_profit"]
    assert trade.orders.count() == 3
    tags = sorted(o.metadata["legacy"]["ft_order_tag"] for o in trade.orders.all())
    assert tags == sorted(o["ft_order_tag"] for o in orders)


def test_a_short_futures_trade(imported: Bot) -> None:
    (row,) = source(
        "SELECT * FROM trades WHERE is_short = 1 AND trading_mode = 'FUTURES' AND is_open = 0"
        " AND leverage > 1 ORDER BY id LIMIT 1"
    )
    trade = Trade.objects.get(bot=imported, trade_id=f"ft-{row['id']}")
    assert (trade.side, trade.symbol, trade.leverage) == (
        "short",
        row["pair"],
        d(row["leverage"], "1e-6"),
    )
    assert trade.entry_time == ft.naive_utc(row["open_date"])
    assert trade.exit_time == ft.naive_utc(row["close_date"])
    assert trade.entry_tag == (row["enter_tag"] or "")
    legacy = trade.strategy_data["legacy"]
    assert legacy["funding_fees"] == row["funding_fees"]
    assert legacy["liquidation_price"] == row["liquidation_price"]
    sides = {o.metadata["role"]: o.side for o in trade.orders.all()}
    assert sides == {"entry": "sell", "exit": "buy"}
    fill = OrderFill.objects.get(order__bot=imported, order__trade=trade, order__side="sell")
    assert fill.order.filled_quantity == fill.quantity == fill.order.quantity
    assert fill.order.avg_fill_price == fill.price


def test_open_trades_become_open_positions(imported: Bot) -> None:
    for row in source("SELECT * FROM trades WHERE is_open = 1"):
        trade = Trade.objects.get(bot=imported, trade_id=f"ft-{row['id']}")
        assert (trade.status, trade.exit_price, trade.exit_time) == ("open", None, None)
        assert trade.entry_tag == (row["enter_tag"] or "")  # NULL enter_tag: ""
        position = trade.position
        assert position is not None
        assert position.quantity == d(row["amount"], "1e-10")
        assert position.avg_entry_price == d(row["open_rate"], "1e-10")
        assert position.opened_at == ft.naive_utc(row["open_date"])
        assert position.realized_pnl_usd == d(row["realized_profit"], "1e-8")
        assert set(trade.orders.values_list("position_id", flat=True)) == {position.pk}


def test_pairlocks_and_key_value_store_are_kept(imported: Bot) -> None:
    context = imported.metadata["freqtrade"]
    locks = source("SELECT * FROM pairlocks ORDER BY id")
    assert context["pairlocks"] == locks
    keys = source('SELECT * FROM "KeyValueStore"')
    assert set(context["key_value_store"]) == {k["key"] for k in keys}
    opening = AccountBalance.objects.get(bot=imported)
    first_open = source("SELECT min(open_date) AS m FROM trades")[0]["m"]
    assert (opening.ts, opening.snapshot_type) == (ft.naive_utc(first_open), "imported")


# --- the oracle: freqtrade's figures against the analytics summary ----------------------------

# Every figure of freqtrade.oracle.json's "figures", and how ours relates to it. "equal": the
# same definition, our figure must equal freqtrade's. Otherwise, why the definitions differ; the
# test then recomputes freqtrade's figure by freqtrade's definition from the imported trades.
FIGURES: dict[str, str] = {
    "closed_trade_count": "equal",
    "open_trade_count": "equal",
    "winning_trades": (
        "differs: freqtrade's RPC counts close_profit >= 0 as winning (draws included); METRICS "
        "wins are pnl_usd > 0. Checked as our wins + breakeven."
    ),
    "losing_trades": "equal",
    "wins": "equal",
    "draws": "equal",
    "losses": "equal",
    "profit_closed_abs": "equal",
    "profit_factor": "equal",
    "expectancy": "equal",
    "expectancy_ratio": "equal",
    "max_drawdown_abs": "equal",
    "max_drawdown_relative": (
        "differs: freqtrade's is the relative drawdown at the point of the largest ABSOLUTE "
        "drawdown; METRICS max_drawdown_pct is the largest relative drawdown (the oracle's "
        "max_drawdown_relative_max). They coincide only when both fall at the same trade."
    ),
    "max_drawdown_relative_max": "equal",
    "sharpe": (
        "differs: freqtrade divides the per-trade returns (profit / starting balance) summed per "
        "day of the window by their population deviation; METRICS uses daily returns on the "
        "realized equity with the sample deviation."
    ),
    "sortino": (
        "differs: freqtrade's downside deviation is the deviation of the losing trades' returns; "
        "METRICS uses sqrt(mean(min(r_d, 0)^2)) over all days."
    ),
    "calmar": (
        "differs: freqtrade uses the mean daily return x 100 x sqrt(365) over the drawdown "
        "at the largest absolute drawdown; METRICS uses cagr / max_drawdown_pct."
    ),
    "sqn": "differs: METRICS has no SQN.",
    "cagr": (
        "differs: same formula, but freqtrade counts whole days between the open dates of the "
        "first and the last trade (open ones included); METRICS counts fractional days from the "
        "first closed trade's entry to the last exit."
    ),
    "per_pair_profit_abs": (
        "no summary figure (METRICS has no per-symbol breakdown): checked as sum(pnl_usd) per "
        "symbol, the pair kept as the symbol."
    ),
}


def closed_trades(bot: Bot) -> list[ft.ClosedTrade]:
    return [
        ft.ClosedTrade(id=int(tid[3:]), close_date=at, profit_abs=float(pnl or 0))
        for tid, at, pnl in Trade.objects.filter(bot=bot, status="closed").values_list(
            "trade_id", "exit_time", "pnl_usd"
        )
        if at is not None
    ]


def test_every_oracle_figure_is_accounted_for(oracle: dict[str, Any]) -> None:
    assert set(FIGURES) == set(oracle["figures"])


def test_summary_equals_freqtrade_where_the_definitions_agree(
    imported: Bot, oracle: dict[str, Any]
) -> None:
    figures = {name: figure["value"] for name, figure in oracle["figures"].items()}
    summary = bot_summary(bot=imported)
    ours: dict[str, Any] = {
        "closed_trade_count": summary["trades_closed"],
        "open_trade_count": summary["trades_open"],
        "losing_trades": summary["losses"],
        "wins": summary["wins"],
        "draws": summary["breakeven"],
        "losses": summary["losses"],
        "profit_closed_abs": summary["net_pnl_usd"],
        "profit_factor": summary["profit_factor"],
        "expectancy": summary["expectancy_usd"],
        "expectancy_ratio": summary["expectancy_ratio"],
        "max_drawdown_abs": summary["max_drawdown_usd"],
        "max_drawdown_relative_max": summary["max_drawdown_pct"] / 100,
    }
    assert set(ours) == {name for name, why in FIGURES.items() if why == "equal"}
    for name, value in ours.items():
        if isinstance(figures[name], int):
            assert value == figures[name], name
        else:
            assert abs(float(value) - figures[name]) <= FLOAT_TOLERANCE, name
    # The api's own copies of the same figures.
    api = oracle["api_profit"]["result"]
    assert (
        abs(summary["win_rate"] - oracle["backtest_style"]["generate_trading_stats"]["winrate"])
        <= FLOAT_TOLERANCE
    )
    if figures["draws"] == 0:  # with no draws the RPC's winrate (draws as wins) is ours too
        assert abs(summary["win_rate"] - api["winrate"]) <= FLOAT_TOLERANCE
    assert summary["trades_closed"] + summary["trades_open"] == api["trade_count"]


def test_figures_that_differ_by_definition_are_freqtrade_s_from_our_trades(
    imported: Bot, oracle: dict[str, Any]
) -> None:
    figures = {name: figure["value"] for name, figure in oracle["figures"].items()}
    start = oracle["starting_balance"]
    trades = closed_trades(imported)
    summary = bot_summary(bot=imported)
    assert summary["wins"] + summary["breakeven"] == figures["winning_trades"]

    dd = ft.drawdown(trades, start)
    assert abs(dd["relative_at_largest_abs"] - figures["max_drawdown_relative"]) <= FLOAT_TOLERANCE
    assert abs(dd["largest_relative"] - summary["max_drawdown_pct"] / 100) <= FLOAT_TOLERANCE

    window = oracle["figures"]["sharpe"]["args"]
    first = source("SELECT open_date FROM trades ORDER BY id LIMIT 1")[0]["open_date"]
    last = source("SELECT open_date FROM trades ORDER BY id DESC LIMIT 1")[0]["open_date"]
    assert ft.naive_utc(first).isoformat() == window["min_date"]
    assert ft.naive_utc(last).isoformat() == window["max_date"]
    days = (ft.naive_utc(last) - ft.naive_utc(first)).days
    assert abs(ft.sharpe(trades, days, start) - figures["sharpe"]) <= FLOAT_TOLERANCE
    assert abs(ft.sortino(trades, days, start) - figures["sortino"]) <= FLOAT_TOLERANCE
    assert abs(ft.calmar(trades, days, start) - figures["calmar"]) <= FLOAT_TOLERANCE
    assert ft.sqn(trades, start) == figures["sqn"]
    final = start + sum(t.profit_abs for t in trades)
    assert abs(ft.cagr(start, final, max(1, days)) - figures["cagr"]) <= FLOAT_TOLERANCE
    # Ours: the same CAGR formula over fractional days from first entry to last exit.
    ours = ft.cagr(start, final, summary["days"])
    assert abs(ours - summary["cagr"]) <= FLOAT_TOLERANCE

    per_pair: dict[str, Decimal] = {}
    for symbol, pnl in Trade.objects.filter(bot=imported, status="closed").values_list(
        "symbol", "pnl_usd"
    ):
        per_pair[symbol] = per_pair.get(symbol, Decimal(0)) + pnl
    assert set(per_pair) == set(figures["per_pair_profit_abs"])
    for pair, value in figures["per_pair_profit_abs"].items():
        assert abs(float(per_pair[pair]) - value) <= FLOAT_TOLERANCE, pair


def test_exits_entries_and_durations_equal_freqtrade(imported: Bot, oracle: dict[str, Any]) -> None:
    exits = {r["key"]: r for r in bot_breakdown(bot=imported, by="exit_reason")}
    for theirs in oracle["api_exits"]["result"]:
        ours = exits[theirs["exit_reason"]]
        assert ours["trades"] == theirs["count"]
        assert abs(float(ours["net_pnl_usd"]) - theirs["profit_abs"]) <= FLOAT_TOLERANCE
    for reason, stats in oracle["api_stats"]["result"]["exit_reasons"].items():
        assert (exits[reason]["wins"], exits[reason]["losses"]) == (stats["wins"], stats["losses"])
    entries = {r["key"] or "Other": r for r in bot_breakdown(bot=imported, by="entry_tag")}
    for theirs in oracle["api_entries"]["result"]:
        ours = entries[theirs["enter_tag"]]  # freqtrade names a NULL enter_tag "Other"
        assert ours["trades"] == theirs["count"]
        assert abs(float(ours["net_pnl_usd"]) - theirs["profit_abs"]) <= FLOAT_TOLERANCE
    # entry_time is open_date, so durations are freqtrade's (close_date - open_date).
    durations = oracle["api_stats"]["result"]["durations"]
    summary = bot_summary(bot=imported)
    assert abs(summary["avg_win_duration_s"] - durations["wins"]) <= 1e-3
    assert abs(summary["avg_loss_duration_s"] - durations["losses"]) <= 1e-3


# --- idempotency, dry run, audit, refusals ------------------------------------------------------


def snapshot(bot_id: str) -> dict[str, list[Any]]:
    return {
        "bots": list(Bot.objects.filter(pk=bot_id).values()),
        "trades": list(Trade.objects.filter(bot_id=bot_id).order_by("id").values()),
        "orders": list(Order.objects.filter(bot_id=bot_id).order_by("id").values()),
        "fills": list(OrderFill.objects.filter(order__bot_id=bot_id).order_by("id").values()),
        "positions": list(Position.objects.filter(bot_id=bot_id).order_by("id").values()),
        "balances": list(AccountBalance.objects.filter(bot_id=bot_id).order_by("id").values()),
    }


def test_a_second_run_changes_nothing_and_says_so(imported: Bot, oracle: dict[str, Any]) -> None:
    before = snapshot(BOT_ID)
    out = run_import(capital=oracle["starting_balance"])
    assert snapshot(BOT_ID) == before
    assert "nothing to do: already imported (0 created, 0 updated)" in out
    trades_line = next(
        line.split() for line in out.splitlines() if line.strip().startswith("trades ")
    )
    n = oracle["counts"]["trades"]
    assert trades_line[1:] == [str(n), "0", "0", str(n), "0"]


def test_dry_run_writes_nothing(db: None, oracle: dict[str, Any]) -> None:
    out = run_import(SOURCE, "--dry-run", capital=oracle["starting_balance"])
    assert out.splitlines()[0].endswith("(dry run: nothing written)")
    trades_line = next(
        line.split() for line in out.splitlines() if line.strip().startswith("trades ")
    )
    assert trades_line[2] == str(oracle["counts"]["trades"])  # would create them all
    assert not Bot.objects.filter(pk=BOT_ID).exists()
    assert not Trade.objects.exists() and not Order.objects.exists()
    assert not ChangeLog.objects.filter(entity_id=BOT_ID).exists()
    assert not SystemEvent.objects.exists()


def test_the_import_is_audited(imported: Bot, oracle: dict[str, Any]) -> None:
    event = SystemEvent.objects.get(bot=imported, event_type="import_completed")
    n = oracle["counts"]["trades"]
    assert event.details["tables"]["trades"] == {
        "read": n,
        "created": n,
        "updated": 0,
        "already_present": 0,
        "duplicates": 0,
    }
    assert event.details["tables"]["orders"]["created"] == oracle["counts"]["orders"]
    assert (event.details["bot_registered"], event.details["source"]) == (True, str(SOURCE))
    assert ChangeLog.objects.filter(entity_id=BOT_ID, action=ChangeAction.CREATE).count() == 1
    assert imported.strategy_type == source("SELECT strategy FROM trades LIMIT 1")[0]["strategy"]
    assert imported.base_currency == oracle["stake_currency"]
    assert imported.initial_capital_usd == Decimal(repr(oracle["starting_balance"]))


def test_a_database_without_trades_is_refused_and_nothing_written(db: None, tmp_path: Path) -> None:
    empty = tmp_path / "other.sqlite"
    sqlite3.connect(empty).execute("CREATE TABLE candles (ts TEXT)").connection.commit()
    with pytest.raises(CommandError, match="no trades table"):
        run_import(empty, capital=1000.0)
    with pytest.raises(CommandError, match="no such file"):
        run_import(tmp_path / "missing.sqlite", capital=1000.0)
    assert not Bot.objects.exists() and not ChangeLog.objects.exists()


def test_a_new_bot_needs_initial_capital(db: None) -> None:
    with pytest.raises(CommandError, match="--initial-capital"):
        run_import()
    assert not Bot.objects.exists()


def _reopen_last_exit(path: Path) -> dict[str, Any]:
    """Turn the first partially exited closed trade back into an open trade after its partial
    exit, as freqtrade stores it then; returns its row."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    (trade,) = conn.execute(
        "SELECT t.* FROM trades t WHERE t.is_open = 0 AND (SELECT count(*) FROM orders o WHERE"
        " o.ft_trade_id = t.id AND o.ft_order_tag = 'partial_exit') = 1 AND NOT EXISTS (SELECT 1"
        " FROM trades u WHERE u.is_open = 1 AND u.pair = t.pair AND u.is_short = t.is_short)"
        " ORDER BY t.id LIMIT 1"
    ).fetchall()
    last = conn.execute(
        "SELECT * FROM orders WHERE ft_trade_id = ? ORDER BY id DESC LIMIT 1", [trade["id"]]
    ).fetchone()
    partial = conn.execute(
        "SELECT * FROM orders WHERE ft_trade_id = ? AND ft_order_tag = 'partial_exit'",
        [trade["id"]],
    ).fetchone()
    # What the partial exit realized: the trade's profit less the last exit's share.
    realized = trade["realized_profit"] * partial["filled"] / (partial["filled"] + last["filled"])
    conn.execute("DELETE FROM orders WHERE id = ?", [last["id"]])
    conn.execute(
        "UPDATE trades SET is_open = 1, close_date = NULL, close_profit = NULL,"
        " close_profit_abs = NULL, exit_reason = 'partial_exit', realized_profit = ?,"
        " amount = ? WHERE id = ?",
        [realized, last["filled"], trade["id"]],
    )
    conn.commit()
    conn.close()
    return {**dict(trade), "realized_profit": realized, "amount": last["filled"]}


def test_an_open_trade_with_a_partial_exit_then_closed_by_a_later_import(
    db: None, tmp_path: Path, oracle: dict[str, Any]
) -> None:
    copy = tmp_path / "partial.sqlite"
    shutil.copy(SOURCE, copy)
    row = _reopen_last_exit(copy)
    run_import(copy, capital=oracle["starting_balance"])
    trade = Trade.objects.get(bot_id=BOT_ID, trade_id=f"ft-{row['id']}")
    assert (trade.status, trade.pnl_usd, trade.exit_price) == ("open", None, None)
    position = trade.position
    assert position is not None and position.status == "partially_closed"
    assert position.quantity == d(row["amount"], "1e-10")
    assert position.initial_quantity == trade.quantity > position.quantity
    assert position.realized_pnl_usd == d(row["realized_profit"], "1e-8")
    assert trade.strategy_data["legacy"]["realized_profit"] == row["realized_profit"]

    out = run_import(capital=oracle["starting_balance"])  # the bot went on: the trade closed
    assert "nothing to do" not in out
    trade.refresh_from_db()
    position.refresh_from_db()
    assert trade.status == "closed" and trade.pnl_usd == d(row["close_profit_abs"], "1e-8")
    assert (position.status, position.quantity, position.closed_at) == (
        "closed",
        0,
        trade.exit_time,
    )


def test_a_synthesized_source_of_2000_trades_imports_in_chunks(
    db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oracle: dict[str, Any]
) -> None:
    # given: the large-run source (the 100k speed measurement's), small; chunks of 500 trades
    counts = ft.synthesize(SOURCE, tmp_path / "large.sqlite", trades=2000)
    monkeypatch.setattr("importers.freqtrade.CHUNK_TRADES", 500)
    # when
    out = run_import(tmp_path / "large.sqlite", capital=oracle["starting_balance"])
    # then
    assert counts["trades"] == 2000
    assert Trade.objects.filter(bot_id=BOT_ID).count() == 2000
    assert Order.objects.filter(bot_id=BOT_ID).count() == counts["orders"]
    assert OrderFill.objects.filter(order__bot_id=BOT_ID).count() == counts["filled_orders"]
    assert Order.objects.filter(bot_id=BOT_ID, trade__isnull=True).count() == 0
    open_positions = Position.objects.filter(bot_id=BOT_ID).exclude(status="closed")
    assert open_positions.count() == counts["open_trades"] == oracle["counts"]["open"]
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:8]}
    assert table["trades"] == ["2,000", "2,000", "0", "0", "0"]
    assert table["orders"] == [f"{counts['orders']:,}", f"{counts['orders']:,}", "0", "0", "0"]
    # a second run over the same source: nothing written
    again = run_import(tmp_path / "large.sqlite", capital=oracle["starting_balance"])
    assert "nothing to do: already imported (0 created, 0 updated)" in again
