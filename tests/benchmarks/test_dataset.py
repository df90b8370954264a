"""generate_dataset: the same seed gives the same rows, and the rows agree with one another."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Sum

from benchmarks.dataset import SCALES, DatasetError, DatasetSpec, dataset_load, table_digests
from benchmarks.dataset.tables import pnl_pct
from tests.benchmarks.loaded import quiet, scalar
from tests.factories import make_bot
from trading.models import Bot, DerivedCandle, MarketData, Trade

pytestmark = pytest.mark.django_db

UNTIL = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def small(seed: int = 7, **sizes: int) -> DatasetSpec:
    return DatasetSpec(seed=seed, until=UNTIL, **{**SCALES["small"], **sizes})


def test_the_same_seed_and_end_give_the_same_rows_and_another_seed_others() -> None:
    first = dataset_load(spec=small(), log=quiet)
    digests = table_digests()

    again = dataset_load(spec=small(), replace=True, log=quiet)

    assert table_digests() == digests
    assert first.rows == again.rows
    assert all(digests.values())
    dataset_load(spec=small(seed=8), replace=True, log=quiet)
    other = table_digests()
    assert other["trading.trades"] != digests["trading.trades"]
    assert other["trading.market_data"] != digests["trading.market_data"]


def test_sizes_follow_the_spec() -> None:
    report = dataset_load(spec=small(), log=quiet)

    assert report.rows["trading.bots"] == Bot.objects.count() == 10
    assert report.rows["trading.trades"] == Trade.objects.count() == 5_000
    # 4,000 minutes of each of 5 markets, and the first market's 39,200 minutes before them:
    # 30 days of its minutes in all (the bench reads a year of its 1h candles at ``full``).
    assert report.rows["trading.market_data"] == MarketData.objects.count() == 20_000 + 39_200
    assert MarketData.objects.values("symbol").distinct().count() == 5
    btc = MarketData.objects.filter(symbol="BTC/USDT").order_by("ts")
    assert btc.count() == 30 * 24 * 60
    assert btc.last().ts - btc.first().ts == timedelta(days=30, minutes=-1)  # type: ignore[union-attr]
    # The higher timeframes, derived from the minutes as the ingest path keeps them.
    btc_hours = DerivedCandle.objects.filter(symbol="BTC/USDT", timeframe="1h")
    assert btc_hours.count() == btc_hours.filter(candle_json__startswith='{"symbol" : ').count()
    assert btc_hours.count() == 30 * 24
    assert DerivedCandle.objects.filter(symbol="ETH/USDT", timeframe="1d").aggregate(
        n=Sum("minutes")
    ) == {"n": 4_000}
    assert report.rows["trading.account_balance"] == 10 * 30 * 24
    # Ids continue after the loaded rows.
    trade = Trade.objects.create(
        bot_id="momentum_001",
        trade_id="after-load",
        symbol="BTC/USDT",
        exchange="binance",
        side="long",
        quantity=Decimal(1),
        entry_price=Decimal(1),
        entry_time=UNTIL,
    )
    assert trade.id == 5_001


def test_trades_are_consistent_with_prices_fees_positions_orders_and_fills() -> None:
    dataset_load(spec=small(), log=quiet)

    # pnl of every closed trade = (exit - entry) x quantity x direction - fees, to the 1e-8.
    assert (
        scalar("""
        SELECT count(*) FROM trading.trades
        WHERE status = 'closed' AND pnl_usd <> round(
            (exit_price - entry_price) * quantity * CASE side WHEN 'long' THEN 1 ELSE -1 END
            - fees_usd, 8)
    """)
        == 0
    )
    assert (
        scalar("""
        SELECT count(*) FROM trading.trades
        WHERE status = 'closed' AND (exit_reason = '' OR exit_time <= entry_time)
    """)
        == 0
    )
    # Its pnl_pct is the ingest path's: pnl / notional x 100, half-even to 6 places.
    closed = list(Trade.objects.filter(status="closed").order_by("id")[:500])
    for t in closed:
        assert t.pnl_usd is not None and t.pnl_pct is not None
        expected = (t.pnl_usd / (t.quantity * t.entry_price) * 100).quantize(Decimal("1e-6"))
        assert t.pnl_pct == expected, t.trade_id
    assert set(Trade.objects.values_list("exit_reason", flat=True)) == {
        "",
        "roi",
        "stop_loss",
        "trailing_stop_loss",
        "exit_signal",
    }
    sides = dict(Trade.objects.values_list("side").annotate(n=Count("id")))
    assert sides["short"] > 0 and sides["long"] > sides["short"]
    sources = dict(Trade.objects.values_list("source").annotate(n=Count("id")))
    assert sources["live"] > sum(sources.values()) / 2
    assert {"paper", "backtest"} <= set(sources)
    assert Bot.objects.filter(status="paused").exists()
    # Each open trade has its open position, with the trade's market, side and quantity.
    assert scalar("SELECT count(*) FROM trading.trades WHERE status = 'open'") == scalar(
        "SELECT count(*) FROM trading.positions WHERE status = 'open'"
    )
    assert scalar("""
        SELECT count(*) FROM trading.trades t JOIN trading.positions p ON p.id = t.position_id
        WHERE t.status = 'open' AND p.bot_id = t.bot_id AND p.symbol = t.symbol
          AND p.side = t.side AND p.quantity = t.quantity AND p.avg_entry_price = t.entry_price
    """) == scalar("SELECT count(*) FROM trading.trades WHERE status = 'open'")
    # Orders: their fills add up; their fees add up to the trade's.
    assert (
        scalar("""
        SELECT count(*) FROM trading.orders o
        LEFT JOIN (SELECT order_id, sum(quantity) q, sum(fee) f FROM trading.order_fills
                   GROUP BY order_id) s ON s.order_id = o.id
        WHERE o.filled_quantity <> COALESCE(s.q, 0) OR o.fees_usd <> COALESCE(s.f, 0)
    """)
        == 0
    )
    assert (
        scalar("""
        SELECT count(*) FROM trading.trades t
        JOIN (SELECT trade_id, sum(fees_usd) f FROM trading.orders GROUP BY trade_id) o
          ON o.trade_id = t.id
        WHERE o.f <> t.fees_usd
    """)
        == 0
    )
    # A bot's last balance: initial capital + pnl of its closed, non-backtest trades by then.
    assert (
        scalar("""
        SELECT count(*) FROM trading.bots b
        JOIN LATERAL (SELECT balance_usd, ts FROM trading.account_balance a
                      WHERE a.bot_id = b.bot_id ORDER BY ts DESC LIMIT 1) last ON true
        WHERE last.balance_usd <> b.initial_capital_usd + COALESCE((
            SELECT sum(pnl_usd) FROM trading.trades t WHERE t.bot_id = b.bot_id
              AND t.status = 'closed' AND t.source <> 'backtest' AND t.exit_time <= last.ts), 0)
    """)
        == 0
    )
    # The materialized views were refreshed with the data.
    assert scalar("SELECT sum(trades_closed) FROM analytics.bot_performance_summary") == scalar(
        "SELECT count(*) FROM trading.trades WHERE status = 'closed' AND source <> 'backtest'"
    )


def test_pnl_pct_rounds_half_to_even_like_decimal_quantize() -> None:
    pnl = np.array([5, 15, -5, 1, -1, 0, 123456789], dtype=np.int64)
    notional = np.array([10**9] * 6 + [987654321], dtype=np.int64)
    got = pnl_pct(pnl, notional)
    for p, n, g in zip(pnl.tolist(), notional.tolist(), got, strict=True):
        assert Decimal(g).scaleb(-6) == (Decimal(p) / Decimal(n) * 100).quantize(Decimal("1e-6"))


def test_a_database_with_bots_is_refused_unless_replace() -> None:
    make_bot("someone_else")

    with pytest.raises(DatasetError, match="--replace"):
        dataset_load(spec=small(), log=quiet)
    with pytest.raises(CommandError, match="--replace"):
        call_command("generate_dataset", "--scale", "small", stdout=None, stderr=None)

    assert list(Bot.objects.values_list("bot_id", flat=True)) == ["someone_else"]
    assert not Trade.objects.exists()
