"""Migration trading 0012 (bot runs) on a populated database of the previous schema: every row
already stored keeps its values and has no run; afterwards a write in an open run is linked to
it, and the database refuses a row linked to another bot's run."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tests.test_config_limits_migration import migrate
from trading.models import AccountBalance, BotRun, Order, Signal, Trade
from trading.services.ingest import trade_upsert_many

BEFORE = [("trading", "0011_market_data_partitioned")]
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_stored_rows_have_no_run_and_new_writes_are_linked() -> None:
    apps = migrate(BEFORE)
    try:
        OldBot = apps.get_model("trading", "Bot")
        bot = OldBot.objects.create(
            bot_id="old_001", name="Old", strategy_type="momentum", exchange="binance",
            initial_capital_usd=Decimal("1000"),
        )  # fmt: skip
        OldBot.objects.create(
            bot_id="other_001", name="Other", strategy_type="momentum", exchange="binance",
            initial_capital_usd=Decimal("1000"),
        )  # fmt: skip
        trade = apps.get_model("trading", "Trade").objects.create(
            bot=bot, trade_id="T-1", symbol="BTC/USDT", exchange="binance", side="long",
            quantity=Decimal("0.5"), entry_price=Decimal("60000"), entry_time=T0,
        )  # fmt: skip
        apps.get_model("trading", "Order").objects.create(
            bot=bot, client_order_id="O-1", trade=trade, symbol="BTC/USDT", side="buy",
            order_type="market", quantity=Decimal("0.5"),
        )  # fmt: skip
        apps.get_model("trading", "Signal").objects.create(
            bot=bot, symbol="BTC/USDT", signal_type="rsi", generated_at=T0
        )
        apps.get_model("trading", "AccountBalance").objects.create(
            bot=bot, ts=T0, balance_usd=Decimal("1000"), equity_usd=Decimal("1001")
        )

        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        for model in (Trade, Order, Signal, AccountBalance):
            assert list(model.objects.values_list("bot_id", "run_id")) == [("old_001", None)]
        assert Trade.objects.values_list("trade_id", "quantity", "entry_price").get() == (
            "T-1",
            Decimal("0.5000000000"),
            Decimal("60000.0000000000"),
        )
        run = BotRun.objects.create(bot_id="old_001", mode="live", started_at=T0)
        row = {
            "trade_id": "T-2", "symbol": "BTC/USDT", "exchange": "binance", "side": "long",
            "quantity": Decimal("1"), "entry_price": Decimal("2"), "exit_price": None,
            "entry_time": T0, "exit_time": None, "fees_usd": Decimal("0"), "pnl_usd": None,
            "pnl_pct": None, "status": "open", "source": "live", "leverage": Decimal("1"),
            "exit_reason": "", "entry_tag": "", "strategy_data": {},
        }  # fmt: skip
        trade_upsert_many(bot=run.bot, rows=[row])
        assert Trade.objects.get(trade_id="T-2").run_id == run.pk
        with (
            pytest.raises(IntegrityError, match="signals_run_of_same_bot_fk"),
            transaction.atomic(),
        ):
            Signal.objects.create(
                bot_id="other_001", run=run, symbol="X/Y", signal_type="rsi", generated_at=T0
            )
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
