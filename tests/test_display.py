"""trading/display.py, the rule book for every figure a person reads (format.js is its twin:
tests/browser/test_dashboard.py runs both on the same cases), and the precision of a market's
prices it is given (trading/selectors/precision.py)."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from django.utils import formats, translation
from django.utils.timezone import localtime

from audit.models import RiskEventType
from tests.factories import make_bot, make_candle, make_order
from trading.display import DASH, RISK_UNITS, UNKNOWN, moment, shown
from trading.selectors.precision import RECENT_CANDLES, price_places

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_money_is_cents_grouped_with_the_currency() -> None:
    assert shown("usd", Decimal("-12345.675")) == "-12,345.68 USD"
    assert shown("usd", "12345.6700000000") == "12,345.67 USD"
    assert shown("usd", "0") == "0.00 USD"


def test_a_time_is_utc_to_the_second_with_the_zone() -> None:
    paris = timezone(timedelta(hours=1))
    assert moment(datetime(2026, 12, 8, 0, 5, 9, 999_999, tzinfo=paris)) == (
        "2026-12-07 23:05:09 UTC"
    )
    naive = datetime(2026, 12, 7, 23, 5, 9)  # noqa: DTZ001 - a naive time is taken as UTC
    assert moment(naive) == "2026-12-07 23:05:09 UTC"
    assert shown("time", "2026-12-07T23:05:09.5Z") == "2026-12-07 23:05:09 UTC"


def test_durations_are_durations() -> None:
    assert [shown("duration", s) for s in (0, 9, 65, 7500, 90061, -7500)] == [
        "0s",
        "9s",
        "1m 05s",
        "2h 05m",
        "1d 01h",
        "-2h 05m",
    ]


def test_an_unknown_price_is_unknown_never_zero() -> None:
    assert shown("price", None, places=2) == UNKNOWN == "unknown"
    assert shown("price", "", places=2) == "unknown"
    assert shown("price", "0.0000000000", places=2) == "0.00"
    assert shown("price", "1234.5", places=3) == "1,234.500"


@pytest.mark.parametrize(
    ("event_type", "raw", "text"),
    [
        ("daily_loss_limit", "300.0000000000", "300.00 USD"),
        ("drawdown_limit", "12.5000000000", "12.50%"),
        ("position_size_limit", "25000.0000000000", "25,000.00 USD"),
        ("leverage_limit", "3.0000000000", "3x"),
        ("open_positions_limit", "5.0000000000", "5"),
        ("stale_heartbeat", "300.0000000000", "5m 00s"),
        ("position_mismatch", "0.2500000000", "0.25"),
    ],
)
def test_every_risk_value_carries_its_unit(event_type: str, raw: str, text: str) -> None:
    assert shown("limit", raw, unit=RISK_UNITS[event_type]) == text
    assert shown("limit", None, unit=RISK_UNITS[event_type]) == DASH


def test_every_risk_event_type_has_a_unit() -> None:
    assert sorted(RISK_UNITS) == sorted(RiskEventType.values)


@pytest.mark.django_db
def test_a_symbols_places_are_the_most_among_its_recent_closes(
    django_assert_num_queries: Any,
) -> None:
    # BTC: the last RECENT_CANDLES 1m closes have at most 2 decimals; an older one had 5.
    make_candle(ts=T0 - timedelta(minutes=1), close=Decimal("60000.12345"), high=Decimal(70000))
    for i in range(RECENT_CANDLES):
        close = Decimal("60000.25") if i == 7 else Decimal("60000.5")
        make_candle(ts=T0 + timedelta(minutes=i), close=close, high=Decimal(70000))
    # Its 1h series on another exchange has 3 decimals: the symbol's places are the largest.
    make_candle(
        exchange="kraken", timeframe="1h", ts=T0, close=Decimal("60000.125"), high=Decimal(70000)
    )
    make_candle(symbol="ETH/USDT", ts=T0, close=Decimal("3000"), high=Decimal(3000))
    make_candle(
        symbol="DOGE/USDT",
        ts=T0,
        low=Decimal("0.07"),
        open=Decimal("0.0812"),
        close=Decimal("0.08123400"),
        high=Decimal("0.09"),
    )

    # A perpetual without candles: the limit prices the bots send (a market order has none).
    bot = make_bot("momentum_001")
    make_order(bot, symbol="SOL/USDT:USDT", price=Decimal("148.5"))
    make_order(bot, symbol="SOL/USDT:USDT", price=Decimal("148.125"))
    make_order(bot, symbol="SOL/USDT:USDT", order_type="market", price=None)
    make_order(bot, symbol="XRP/USDT:USDT", order_type="market", price=None)
    make_order(bot, symbol="BTC/USDT", price=Decimal("60000.123456"))  # candles come first

    with django_assert_num_queries(1):
        places = price_places()

    assert places == {"BTC/USDT": 3, "DOGE/USDT": 6, "ETH/USDT": 0, "SOL/USDT:USDT": 3}


@pytest.mark.django_db
def test_no_candles_no_places() -> None:
    assert price_places() == {}


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 7, 23, 5, 9, tzinfo=UTC),
        datetime(2026, 1, 5, 0, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(2026, 6, 1, 14, 30, 1, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_django_writes_a_time_as_the_rule_book_does(at: datetime) -> None:
    """The admin's dates (and any template's) come from the English format module: the same
    text as trading/display.py and the dashboard."""
    with translation.override("en-us"):
        assert formats.date_format(localtime(at), "DATETIME_FORMAT") == moment(at)
        assert formats.localize(localtime(at)) == moment(at)
        assert formats.date_format(at.date(), "DATE_FORMAT") == at.date().isoformat()
