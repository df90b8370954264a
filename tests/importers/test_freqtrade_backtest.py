"""import_freqtrade_backtest on a result file written by freqtrade's own code
(samples/backtest-result-2026-01-05_12-00-00.zip, made by samples/make_freqtrade_backtest.py
with freqtrade 2026.9), then reconciled against a live run whose answer is worked out here.

The backtest (stake 100 USDT, fee 0.1% each side):
  BTC long  10:00 100 -> 110.5, 1 BTC: fees 0.1 + 0.1105, profit_abs 10.2895
  ETH short 12:00 50.2 -> 48.1, 1.99203187 ETH: profit_abs 3.9874502
  SOL long  09:00 20 -> 21, 5 SOL: fees 0.02 + 0.021, profit_abs 4.795
  BTC long  15:10 100 -> 99, 1 BTC: profit_abs -1.199
The live run: BTC 10:00:30 100.5 -> 110 (fees 0.2, pnl 9.3), ETH short 12:00 50 -> 48 x2
(0.1, 3.9), SOL 09:00:10 20 -> 21 x5 (0.3, 4.7), BTC 15:00 (pnl 2.0, 600 s from the
backtest's: live only). live 19.9 - backtest 17.8729502 = 2.0270498.
"""

import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from analytics.selectors.reconcile import runs_reconcile
from audit.models import SystemEvent
from tests.factories import make_bot, make_closed_trade
from trading.models import Bot, BotRun, Trade

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "samples" / "backtest-result-2026-01-05_12-00-00.zip"
T = datetime(2026, 1, 5, tzinfo=UTC)
D = Decimal


def run_import(source: Path, bot_id: str = "ft_live_001") -> str:
    out = StringIO()
    call_command("import_freqtrade_backtest", "--source", str(source), "--bot-id", bot_id,
                 stdout=out)  # fmt: skip
    return out.getvalue()


@pytest.fixture
def bot(db: None) -> Bot:
    return make_bot("ft_live_001", initial_capital_usd=D("1000"))


def test_the_result_becomes_one_backtest_run_with_its_trades(bot: Bot) -> None:
    output = run_import(SAMPLE)

    run = BotRun.objects.get()
    assert output == f"run {run.pk} (FixtureStrategy, backtest): trades 4 created, 0 updated, " \
        "0 unchanged\n"  # fmt: skip
    assert (run.mode, run.status, run.strategy_name) == ("backtest", "closed", "FixtureStrategy")
    assert (run.started_at, run.ended_at) == (
        T + timedelta(hours=9),
        T + timedelta(hours=16, minutes=10),
    )
    assert run.metadata["backtest_key"] == "FixtureStrategy-1767690000"
    assert run.metadata["starting_balance"] == 1000
    rows = list(
        Trade.objects.order_by("entry_time").values_list(
            "symbol", "side", "quantity", "entry_price", "exit_price", "fees_usd", "pnl_usd",
            "exit_reason",
        )
    )  # fmt: skip
    assert rows == [
        ("SOL/USDT", "long", D("5"), D("20"), D("21"), D("0.205"), D("4.795"), "roi"),
        ("BTC/USDT", "long", D("1"), D("100"), D("110.5"), D("0.2105"), D("10.2895"), "roi"),
        ("ETH/USDT", "short", D("1.99203187"), D("50.2"), D("48.1"), D("0.19581673"),
         D("3.9874502"), "exit_signal"),
        ("BTC/USDT", "long", D("1"), D("100"), D("99"), D("0.199"), D("-1.199"), "stop_loss"),
    ]  # fmt: skip
    assert set(Trade.objects.values_list("source", "run_id")) == {("backtest", run.pk)}
    assert SystemEvent.objects.get(event_type="backtest_imported").details["created"] == 4


def test_importing_it_again_writes_nothing_and_the_json_alone_is_read_too(
    bot: Bot, tmp_path: Path
) -> None:
    run_import(SAMPLE)
    again = run_import(SAMPLE)
    with zipfile.ZipFile(SAMPLE) as archive:  # the layout freqtrade wrote before 2025
        archive.extract(f"{SAMPLE.stem}.json", tmp_path)
    from_json = run_import(tmp_path / f"{SAMPLE.stem}.json")

    assert again.endswith("trades 0 created, 0 updated, 4 unchanged\n")
    assert from_json.endswith("trades 0 created, 0 updated, 4 unchanged\n")
    assert BotRun.objects.count() == 1 and Trade.objects.count() == 4


def test_a_file_that_is_no_result_writes_nothing(bot: Bot, tmp_path: Path) -> None:
    bad = tmp_path / "backtest-result-x.json"
    bad.write_text('{"strategy": {"S": {"trades": [{"pair": "BTC/USDT", "amount": -1}]}}}')

    with pytest.raises(CommandError, match=r"trade 0 \(BTC/USDT None\): amount must be a positive"):
        run_import(bad)
    with pytest.raises(CommandError, match="no bot 'nobody'"):
        run_import(SAMPLE, bot_id="nobody")
    assert not BotRun.objects.exists() and not Trade.objects.exists()


def test_reconciled_against_a_live_run_to_the_cent(bot: Bot) -> None:
    run_import(SAMPLE)
    backtest = BotRun.objects.get()
    live = BotRun.objects.create(bot=bot, mode="live", started_at=T)

    def trade(
        symbol: str, side: str, minute: float, entry: str, qty: str, exit_: str, fees: str, pnl: str
    ) -> None:
        opened = T + timedelta(minutes=minute)
        make_closed_trade(
            bot, run=live, symbol=symbol, side=side, entry_time=opened,
            exit_time=opened + timedelta(hours=1), entry_price=D(entry), quantity=D(qty),
            exit_price=D(exit_), fees_usd=D(fees), pnl_usd=D(pnl), source="live",
        )  # fmt: skip

    trade("BTC/USDT", "long", 600.5, "100.5", "1", "110", "0.2", "9.3")
    trade("ETH/USDT", "short", 720, "50", "2", "48", "0.1", "3.9")
    trade("SOL/USDT", "long", 540 + 1 / 6, "20", "5", "21", "0.3", "4.7")
    trade("BTC/USDT", "long", 900, "100", "1", "102", "0", "2.0")

    result = runs_reconcile(
        bot=bot, live_run_id=live.pk, backtest_run_id=backtest.pk, tolerance=timedelta(seconds=300)
    )

    pnl = result["pnl"]
    assert (pnl["live_usd"], pnl["backtest_usd"], pnl["difference_usd"]) == (
        D("19.9"), D("17.8729502"), D("2.0270498")
    )  # fmt: skip
    assert (pnl["matched_usd"], pnl["live_only_usd"], pnl["backtest_only_usd"]) == (
        D("-1.1719502"), D("2.0"), D("1.199")
    )  # fmt: skip
    # ETH: d = -1; entry -d (50 - 50.2) 2 = -0.4; exit d (48 - 48.1) 2 = 0.2; size
    # d (48.1 - 50.2)(2 - 1.99203187) = 0.016733073; fee -(0.1 - 0.19581673) = 0.09581673.
    eth = next(m for m in result["matched"] if m["live"]["symbol"] == "ETH/USDT")
    assert eth["parts_usd"] == {
        "entry": D("-0.4"), "exit": D("0.2"), "size": D("0.01673307"), "fee": D("0.09581673"),
        "other": D("0"),
    }  # fmt: skip
    assert sum(eth["parts_usd"].values()) == eth["pnl_difference_usd"] == D("-0.0874502")
    assert sum(pnl["matched_parts_usd"].values()) == pnl["matched_usd"]
    assert [t["entry_time"] for t in result["backtest_only"]] == [
        T + timedelta(hours=15, minutes=10)
    ]
