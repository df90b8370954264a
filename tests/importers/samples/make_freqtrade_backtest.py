"""Writes tests/importers/samples/backtest-result-2026-01-05_12-00-00.zip with freqtrade's own
code (not the project's: run it with a Python that has freqtrade installed, e.g.
``python3.12 -m venv /tmp/ftvenv && /tmp/ftvenv/bin/pip install freqtrade==2026.9 &&
/tmp/ftvenv/bin/python tests/importers/samples/make_freqtrade_backtest.py``).

The trades are made as freqtrade's backtesting makes them (optimize/backtesting.py: a
LocalTrade, an entry Order closed by close_bt_order, an exit Order, trade.close at its price),
turned into the results frame by freqtrade's trade_list_to_dataframe, summarised by
generate_backtest_stats and written by store_backtest_results: the zip layout freqtrade
2025+ writes (the result JSON, the sanitized config, and a .meta.json beside the zip).

Running `freqtrade backtesting` itself is not possible here: it loads the exchange's markets
over the network. The prices below are fixed, so the file is the same on every run except for
the run's start time, which freqtrade stamps from the clock and which is pinned here.
"""

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from shutil import copyfile

from freqtrade.data.btanalysis import trade_list_to_dataframe  # type: ignore[import-not-found]
from freqtrade.enums import TradingMode  # type: ignore[import-not-found]
from freqtrade.optimize.optimize_reports import (  # type: ignore[import-not-found]
    generate_backtest_stats,
    store_backtest_results,
)
from freqtrade.persistence import LocalTrade, Order  # type: ignore[import-not-found]

FEE = 0.001
STAKE = 100.0
START = datetime(2026, 1, 5, tzinfo=UTC)
# (pair, entry minutes after START, hours held, entry price, exit price, short, exit reason)
TRADES = [
    ("BTC/USDT", 600, 2, 100.0, 110.5, False, "roi"),  # 10:00 -> 12:00
    ("ETH/USDT", 720, 1, 50.2, 48.1, True, "exit_signal"),  # 12:00 -> 13:00, a short
    ("SOL/USDT", 540, 1, 20.0, 21.0, False, "roi"),  # 09:00 -> 10:00
    ("BTC/USDT", 910, 1, 100.0, 99.0, False, "stop_loss"),  # 15:10 -> 16:10
]


def _order(
    n: int, trade: LocalTrade, side: str, price: float, amount: float, at: datetime
) -> Order:
    order = Order(
        id=n, ft_trade_id=trade.id, ft_is_open=True, ft_pair=trade.pair, order_id=str(n),
        symbol=trade.pair, ft_order_side=side, side=side, order_type="limit", status="open",
        order_date=at, order_filled_date=at, order_update_date=at, ft_price=price, price=price,
        average=price, amount=amount, filled=0, remaining=amount,
        cost=amount * price * (1 + FEE),
    )  # fmt: skip
    order._trade_bt = trade
    trade.orders.append(order)
    order.close_bt_order(at, trade)
    return order


def make_trades() -> list[LocalTrade]:
    trades = []
    for n, (pair, minutes, hours, entry, exit_, short, reason) in enumerate(TRADES, start=1):
        opened = START + timedelta(minutes=minutes)
        closed = opened + timedelta(hours=hours)
        amount = STAKE / entry
        trade = LocalTrade(
            id=n, pair=pair, base_currency=pair.split("/")[0], stake_currency="USDT",
            open_rate=entry, open_rate_requested=entry, open_date=opened, stake_amount=STAKE,
            amount=0, amount_requested=amount, fee_open=FEE, fee_close=FEE, is_open=True,
            enter_tag="fixture", timeframe=5, exchange="binance", is_short=short,
            trading_mode=TradingMode.SPOT if not short else TradingMode.FUTURES, leverage=1.0,
            orders=[],
        )  # fmt: skip
        _order(2 * n - 1, trade, trade.entry_side, entry, amount, opened)
        trade.recalc_trade_from_orders()
        trade.exit_reason = reason
        _order(2 * n, trade, trade.exit_side, exit_, trade.amount, closed)
        trade.close_date = closed
        trade.close(exit_, show_msg=False)
        trades.append(trade)
    return trades


def main(target: Path) -> None:
    trades = make_trades()
    config = {
        "timeframe": "5m", "stake_currency": "USDT", "stake_amount": STAKE,
        "max_open_trades": 3, "minimal_roi": {"0": 0.1}, "stoploss": -0.1,
        "trading_mode": "spot", "margin_mode": "", "use_exit_signal": True,
        "exit_profit_only": False, "exit_profit_offset": 0.0, "ignore_roi_if_entry_signal": False,
        "dry_run_wallet": 1000, "exchange": {"name": "binance"},
    }  # fmt: skip
    end = START + timedelta(days=1)
    content = {
        "results": trade_list_to_dataframe(trades), "config": config, "locks": [],
        "rejected_signals": 0, "timedout_entry_orders": 0, "timedout_exit_orders": 0,
        "canceled_trade_entries": 0, "canceled_entry_orders": 0, "replaced_entry_orders": 0,
        "final_balance": 1000 + sum(t.close_profit_abs for t in trades),
        "backtest_start_time": int(datetime(2026, 1, 6, 9, tzinfo=UTC).timestamp()),
        "backtest_end_time": int(datetime(2026, 1, 6, 9, 1, tzinfo=UTC).timestamp()),
        "run_id": "fixture-run",
    }  # fmt: skip
    stats = generate_backtest_stats({}, {"FixtureStrategy": content}, START, end)
    with tempfile.TemporaryDirectory() as folder:
        written = store_backtest_results(
            {**config, "exportdirectory": Path(folder), "original_config": config},
            stats,
            "2026-01-05_12-00-00",
        )
        copyfile(written, target / written.name)
    print(target / written.name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
