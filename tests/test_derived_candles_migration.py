"""Migration trading 0010 on a populated database of the previous schema: every market's 1m
candles already stored go into the backlog (one row per market, its first and last minute),
candles of other timeframes do not, and the first catch-up derives exactly what a
recomputation from those minutes gives."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.api.test_derived_candles import assert_derived_equal_recomputed
from tests.test_config_limits_migration import migrate
from trading.models import DerivedCandle, DerivedCandleBacklog
from trading.services.candles_derived import derived_candles_catch_up_all

BEFORE = [("trading", "0009_risk_metrics_sums_wider")]
DAY0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_stored_minutes_are_backlogged_and_derived_once() -> None:
    apps = migrate(BEFORE)
    try:
        OldCandle = apps.get_model("trading", "MarketData")

        def candle(symbol: str, timeframe: str, minute: int, price: str) -> None:
            p = Decimal(price)
            OldCandle.objects.create(
                symbol=symbol, exchange="binance", timeframe=timeframe,
                ts=DAY0 + timedelta(minutes=minute), open=p, high=p + 1, low=p - 1, close=p,
                volume=Decimal("0.5"),
            )  # fmt: skip

        for n in (0, 1, 59, 60, 1500):
            candle("BTC/USDT", "1m", n, f"{100 + n}.25")
        candle("ETH/USDT", "1m", 7, "50")
        candle("SOL/USDT", "1h", 0, "20")  # a bot's 1h candle: served as sent, not derived

        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        backlog = DerivedCandleBacklog.objects.order_by("symbol")
        assert [(b.symbol, b.exchange, b.first_ts, b.last_ts) for b in backlog] == [
            ("BTC/USDT", "binance", DAY0, DAY0 + timedelta(minutes=1500)),
            ("ETH/USDT", "binance", DAY0 + timedelta(minutes=7), DAY0 + timedelta(minutes=7)),
        ]
        assert derived_candles_catch_up_all() == 2
        assert_derived_equal_recomputed()
        assert_derived_equal_recomputed("ETH/USDT")
        assert DerivedCandle.objects.filter(symbol="BTC/USDT", timeframe="1d").count() == 2
        assert not DerivedCandle.objects.filter(symbol="SOL/USDT").exists()
    finally:  # leave the schema as every other test expects it
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
