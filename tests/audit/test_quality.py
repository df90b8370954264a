"""The data-quality checks (audit.services.data_quality_check): each finds exactly the planted
problem, nothing on clean data, and a second run writes no finding again."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from audit.models import SystemEvent
from audit.selectors import data_quality_latest
from audit.services import data_quality_check
from tests.factories import (
    make_bot,
    make_candle,
    make_fill,
    make_order,
    make_position,
    make_signal,
    make_trade,
)
from trading.models import Bot, Order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
DAY_AGO = NOW - timedelta(days=1)


@pytest.fixture
def bot(db: None) -> Bot:
    return make_bot("momentum_001")


@pytest.fixture
def other(db: None) -> Bot:
    return make_bot("shortseller_001")


def candles(*minutes: int, **fields: Any) -> None:
    for m in minutes:
        make_candle(ts=NOW - timedelta(minutes=m), **fields)


def findings() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.event_type, e.severity, e.details)
        for e in SystemEvent.objects.filter(component="data_quality")
        .exclude(event_type="data_quality_run")
        .order_by("id")
    ]


def clean_world(bot: Bot) -> None:
    """One of everything, consistent."""
    candles(*range(1, 30))
    position = make_position(bot, quantity=Decimal("0.5"), initial_quantity=Decimal("0.5"))
    trade = make_trade(bot, position=position, entry_time=NOW - timedelta(hours=1))
    order = make_order(bot, trade=trade, position=position)
    make_fill(order, quantity=Decimal("0.5"))
    Order.objects.filter(pk=order.pk).update(filled_quantity=Decimal("0.5"))
    make_signal(bot, executed=True, trade=trade, generated_at=NOW - timedelta(hours=1))


def test_clean_data_has_no_findings_and_the_run_is_recorded(bot: Bot) -> None:
    clean_world(bot)

    assert data_quality_check(now=NOW) == []

    run = SystemEvent.objects.get(component="data_quality")
    assert (run.event_type, run.severity, run.ts) == ("data_quality_run", "info", NOW)
    assert run.details == {
        "checked_at": "2026-01-10T15:00:00Z",
        "candle_window_s": 86400,
        "row_window_s": 604800,
        "counts": {
            "candle_gap": 0,
            "orphaned_link": 0,
            "executed_signal_without_trade": 0,
            "fill_quantity_mismatch": 0,
            "duplicate_trade": 0,
            "position_mismatch": 0,
        },
        "truncated": [],
        "new": 0,
        "finding_ids": [],
    }


def test_a_gap_in_one_minute_candles(db: None) -> None:
    candles(10, 9, 6, 5)  # 8 and 7 are missing
    candles(10, 7, timeframe="5m")  # other timeframes are not one-minute candles
    candles(*(60 * 24 + m for m in (10, 5)))  # before the window
    candles(10, 9, symbol="ETH/USDT")  # no gap; nothing after the last candle is a gap

    [event] = data_quality_check(now=NOW)

    assert (event.event_type, event.severity, event.bot_id) == ("candle_gap", "warning", None)
    assert event.details == {
        "check": "candle_gap",
        "symbol": "BTC/USDT",
        "exchange": "binance",
        "timeframe": "1m",
        "last_candle_before": "2026-01-10T14:51:00Z",
        "first_candle_after": "2026-01-10T14:54:00Z",
        "gap_start": "2026-01-10T14:52:00Z",
        "gap_end": "2026-01-10T14:53:00Z",
        "missing_candles": 2,
    }
    assert event.message == (
        "BTC/USDT@binance 1m: 2 candle(s) missing between 2026-01-10 14:51 and 2026-01-10 14:54 UTC"
    )


def test_rows_linked_to_another_bots_rows(bot: Bot, other: Bot) -> None:
    theirs_trade = make_trade(other, trade_id="theirs-1", entry_time=NOW)
    theirs_position = make_position(other, quantity=Decimal("0.5"))  # agrees with its trade
    order = make_order(bot, client_order_id="o-1", trade=theirs_trade)
    order2 = make_order(bot, client_order_id="o-2", position=theirs_position)
    trade = make_trade(bot, trade_id="mine-1", position=theirs_position, entry_time=NOW)
    signal = make_signal(bot, trade=theirs_trade, executed=True, generated_at=NOW)
    old = make_order(bot, client_order_id="o-old", trade=theirs_trade)
    Order.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(days=8))  # out of window

    data_quality_check(now=NOW)

    link = {"check": "orphaned_link", "bot_id": "momentum_001", "linked_bot_id": "shortseller_001"}
    assert findings() == [
        ("orphaned_link", "error", {**link, "table": "orders", "id": order.pk, "link": "trade",
                                    "linked_id": theirs_trade.pk}),
        ("orphaned_link", "error", {**link, "table": "orders", "id": order2.pk,
                                    "link": "position", "linked_id": theirs_position.pk}),
        ("orphaned_link", "error", {**link, "table": "signals", "id": signal.pk, "link": "trade",
                                    "linked_id": theirs_trade.pk}),
        ("orphaned_link", "error", {**link, "table": "trades", "id": trade.pk,
                                    "link": "position", "linked_id": theirs_position.pk}),
    ]  # fmt: skip


def test_an_executed_signal_without_a_trade(bot: Bot) -> None:
    signal = make_signal(bot, executed=True, generated_at=NOW - timedelta(minutes=20))
    make_signal(bot, executed=True, generated_at=NOW - timedelta(minutes=5))  # still in grace
    make_signal(bot, executed=False, generated_at=NOW - timedelta(minutes=20))

    data_quality_check(now=NOW)

    assert findings() == [
        (
            "executed_signal_without_trade",
            "warning",
            {
                "check": "executed_signal_without_trade",
                "signal_id": signal.pk,
                "bot_id": "momentum_001",
                "symbol": "BTC/USDT",
                "signal_type": "breakout",
                "generated_at": "2026-01-10T14:40:00Z",
            },
        )
    ]


def test_fills_that_disagree_with_the_orders_filled_quantity(bot: Bot) -> None:
    order = make_order(bot, client_order_id="o-1")
    make_fill(order, quantity=Decimal("0.25"))
    make_fill(order, quantity=Decimal("0.5"))
    Order.objects.filter(pk=order.pk).update(filled_quantity=Decimal("0.5"))
    make_order(bot, client_order_id="no-fills", filled_quantity=Decimal("1"))

    [event] = data_quality_check(now=NOW)

    assert (event.event_type, event.severity, event.bot_id) == (
        "fill_quantity_mismatch",
        "error",
        "momentum_001",
    )
    assert event.details == {
        "check": "fill_quantity_mismatch",
        "order_id": order.pk,
        "bot_id": "momentum_001",
        "client_order_id": "o-1",
        "filled_quantity": "0.5000000000",
        "fills_quantity": "0.7500000000",
        "fills": 2,
    }


def test_the_same_trade_under_two_sources(bot: Bot, other: Bot) -> None:
    entry = NOW - timedelta(hours=2)
    # The bot sent its time to the millisecond; the legacy table kept whole seconds.
    a = make_trade(
        bot, trade_id="live-1", source="live", entry_time=entry + timedelta(milliseconds=437)
    )
    b = make_trade(bot, trade_id="imp-1", source="imported", entry_time=entry)
    make_trade(other, trade_id="live-1", entry_time=entry)  # another bot's is not a duplicate
    make_trade(bot, trade_id="next-second", entry_time=entry + timedelta(seconds=1))
    make_trade(bot, trade_id="other-qty", entry_time=entry, quantity=Decimal("0.6"))
    make_trade(bot, trade_id="cancelled", entry_time=entry, status="cancelled")

    [event] = data_quality_check(now=NOW)

    assert event.details == {
        "check": "duplicate_trade",
        "bot_id": "momentum_001",
        "symbol": "BTC/USDT",
        "side": "long",
        "entry_time": "2026-01-10T13:00:00Z",
        "quantity": "0.5000000000",
        "ids": [a.pk, b.pk],
        "trade_ids": ["live-1", "imp-1"],
        "sources": ["live", "imported"],
    }


def test_positions_that_disagree_with_the_net_of_their_open_trades(bot: Bot) -> None:
    # Agrees: 0.7 long - 0.2 short = 0.5; a closed trade does not count.
    good = make_position(bot, quantity=Decimal("0.5"), initial_quantity=Decimal("1"))
    make_trade(bot, position=good, quantity=Decimal("0.7"))
    make_trade(bot, position=good, quantity=Decimal("0.2"), side="short")
    make_trade(
        bot, position=good, quantity=Decimal("0.3"), status="closed", exit_price=Decimal("1"),
        exit_time=NOW, pnl_usd=Decimal("1"),
    )  # fmt: skip
    bad = make_position(bot, symbol="ETH/USDT", quantity=Decimal("1"))
    t1 = make_trade(bot, symbol="ETH/USDT", position=bad, quantity=Decimal("0.4"))
    closed = make_position(bot, symbol="SOL/USDT", status="closed", closed_at=NOW)
    t2 = make_trade(bot, symbol="SOL/USDT", position=closed, quantity=Decimal("0.1"))
    make_position(bot, symbol="XRP/USDT")  # no linked trades: not checked

    data_quality_check(now=NOW)

    base = {"check": "position_mismatch", "bot_id": "momentum_001", "exchange": "binance",
            "side": "long"}  # fmt: skip
    assert findings() == [
        ("position_mismatch", "error", {**base, "position_id": bad.pk, "symbol": "ETH/USDT",
         "status": "open", "quantity": "1.0000000000", "open_trades_quantity": "0.4000000000",
         "open_trade_ids": [t1.pk]}),
        ("position_mismatch", "error", {**base, "position_id": closed.pk, "symbol": "SOL/USDT",
         "status": "closed", "quantity": "0", "open_trades_quantity": "0.1000000000",
         "open_trade_ids": [t2.pk]}),
    ]  # fmt: skip


# --- Idempotence and the latest findings -------------------------------------------------------


def test_a_second_run_writes_no_finding_again(bot: Bot) -> None:
    candles(10, 5)
    make_signal(bot, executed=True, generated_at=NOW - timedelta(hours=1))
    first = data_quality_check(now=NOW)
    assert [e.event_type for e in first] == ["candle_gap", "executed_signal_without_trade"]

    assert data_quality_check(now=NOW + timedelta(minutes=1)) == []

    assert SystemEvent.objects.exclude(event_type="data_quality_run").count() == 2
    latest = data_quality_latest()
    assert latest.checked_at == NOW + timedelta(minutes=1)
    assert [e.pk for e in latest.findings] == [e.pk for e in first]
    run = SystemEvent.objects.filter(event_type="data_quality_run").order_by("-id").first()
    assert run is not None
    assert (run.severity, run.message) == ("warning", "data quality: 2 finding(s), 0 new")


def test_a_changed_finding_is_new_and_a_fixed_one_leaves_the_latest_findings(bot: Bot) -> None:
    candles(10, 5)
    order = make_order(bot)
    make_fill(order, quantity=Decimal("0.25"))
    Order.objects.filter(pk=order.pk).update(filled_quantity=Decimal("0.5"))
    _gap, mismatch = data_quality_check(now=NOW)

    candles(7)  # the gap shrinks to two holes: a changed finding
    make_fill(order, quantity=Decimal("0.25"))  # the fills now add up
    later = NOW + timedelta(minutes=1)
    created = data_quality_check(now=later)

    assert [(e.event_type, e.details["missing_candles"]) for e in created] == [
        ("candle_gap", 2),
        ("candle_gap", 1),
    ]
    assert [e.pk for e in data_quality_latest().findings] == [e.pk for e in created]
    assert mismatch.pk not in [e.pk for e in data_quality_latest().findings]


def test_latest_before_any_run() -> None:
    assert data_quality_latest().checked_at is None
    assert data_quality_latest().findings == []
