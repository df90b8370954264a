"""The market the demo bots trade in: one price path per symbol, and its one-minute candles."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from django.db import connection

from botconfig.demo.specs import EXCHANGE, ONE, SEED, Market
from trading.models import MarketData, Timeframe
from trading.services.candles_derived import derived_candles_mark_spans
from trading.services.partitions import market_data_partitions_create, months_between

REGIME_MINUTES = 720  # the trend may turn twice a day
DRIFT = 0.03  # a regime's drift per minute, in standard deviations of the one-minute return


def _decimal(draw: float) -> Decimal:
    """A random draw (not money) as a Decimal of 8 places, before it touches a price."""
    return Decimal(round(draw * 100_000_000)).scaleb(-8)


def rng(*names: str) -> random.Random:
    """An independent stream per concern, so one part's draws never shift another's."""
    return random.Random(":".join((SEED, *names)))  # noqa: S311 - demo data, not security


@dataclass(frozen=True)
class Path:
    """``closes[i]`` closes the candle of minute ``i``, which opens at ``closes[i - 1]``."""

    market: Market
    closes: list[Decimal]
    trends: list[int]  # +1 or -1 per REGIME_MINUTES: the direction the drift pushes

    def open_at(self, minute: int) -> Decimal:
        return self.closes[minute - 1] if minute > 0 else self.market.start_price

    def trend_at(self, minute: int) -> int:
        return self.trends[minute // REGIME_MINUTES]


def price_path(market: Market, minutes: int) -> Path:
    """A random walk whose drift is drawn afresh every REGIME_MINUTES: trends, then turns."""
    draw = rng("path", market.symbol)
    closes: list[Decimal] = []
    trends: list[int] = []
    price = market.start_price
    drift = 0.0
    for i in range(minutes):
        if i % REGIME_MINUTES == 0:
            drift = draw.gauss(0.0, market.minute_vol * DRIFT)
            trends.append(1 if drift >= 0 else -1)
        step = _decimal(draw.gauss(drift, market.minute_vol))
        price = (price * (ONE + step)).quantize(market.tick)
        closes.append(price)
    return Path(market=market, closes=closes, trends=trends)


def candle_rows(path: Path, start: datetime, first: int) -> Iterator[tuple[Any, ...]]:
    """Candles of minutes ``first`` to the end: wicks beyond open and close, volume > 0."""
    market = path.market
    draw = rng("candles", market.symbol)
    for i in range(first, len(path.closes)):
        open_, close = path.open_at(i), path.closes[i]
        up = _decimal(abs(draw.gauss(0.0, market.minute_vol * 0.5)))
        down = _decimal(abs(draw.gauss(0.0, market.minute_vol * 0.5)))
        volume = market.minute_volume * _decimal(draw.lognormvariate(0.0, 0.7))
        yield (
            market.symbol,
            EXCHANGE,
            Timeframe.M1.value,
            start + timedelta(minutes=i),
            open_,
            (max(open_, close) * (ONE + up)).quantize(market.tick, ROUND_UP),
            (min(open_, close) * (ONE - down)).quantize(market.tick, ROUND_DOWN),
            close,
            volume.quantize(market.lot),
        )


_COLUMNS = "symbol, exchange, timeframe, ts, open, high, low, close, volume"


def candles_store(paths: list[Path], start: datetime, *, first: int) -> int:
    """Write the candles of minutes ``first`` onwards; returns how many were new.

    COPY into a temporary table, then one INSERT that keeps a candle already stored (a candle
    is stored once, whoever sends it): seconds for tens of thousands of rows, where the ORM
    spends most of its time preparing values.
    """
    table = connection.ops.quote_name(MarketData._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE demo_candles (symbol text, exchange text, timeframe text, "
            "ts timestamptz, open numeric, high numeric, low numeric, close numeric, "
            "volume numeric) ON COMMIT DROP"
        )
        with cursor.copy(f"COPY demo_candles ({_COLUMNS}) FROM STDIN") as copy:
            for path in paths:
                copy.write(
                    "".join(
                        "\t".join(map(str, row)) + "\n" for row in candle_rows(path, start, first)
                    )
                )
        cursor.execute("SELECT min(ts), max(ts) FROM demo_candles")
        first_ts, last_ts = cursor.fetchone() or (None, None)
        if first_ts is not None and last_ts is not None:  # the partitions of their months
            market_data_partitions_create(months=months_between(first_ts, last_ts))
        cursor.execute(
            f"INSERT INTO {table} ({_COLUMNS}, indicators) "  # noqa: S608 - no input in it
            f"SELECT {_COLUMNS}, '{{}}'::jsonb FROM demo_candles ORDER BY symbol, ts "
            "ON CONFLICT (symbol, exchange, timeframe, ts) DO NOTHING"
        )
        created = cursor.rowcount
        cursor.execute("DROP TABLE demo_candles")
    # Their 5m to 1d candles are derived by the next read or beat run, as the API's are.
    derived_candles_mark_spans(
        spans=[
            (
                path.market.symbol,
                EXCHANGE,
                start + timedelta(minutes=first),
                start + timedelta(minutes=len(path.closes) - 1),
            )
            for path in paths
            if len(path.closes) > first
        ]
    )
    return int(created)
