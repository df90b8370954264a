"""POST market-data/'s fast path: a batch of well-formed candles from body bytes to COPY text with
as little Python per value as it takes.

The body is decoded by msgspec into typed structs (prices as their JSON strings, never a float
or a Decimal), each candle is checked for what only Python can judge (names, the open time's
alignment and skew, prices written as plain decimals of at most 10 places), and its COPY line
is built from the very texts sent. What the table's CHECK constraints judge (high at least open,
close and low; low above 0; volume at least 0; the timeframe) is left to PostgreSQL, and so are
what its input functions refuse (an impossible date, more than 18 digits before the point, a
malformed number).

Anything else takes the generic path (trading.api.market), which parses the body again and
names every bad candle as always: a body this decoder refuses, a candle it does not take at once
(``NotFast``, raised while streaming, which stops the COPY), or a batch PostgreSQL refused (the
transaction undone, nothing written). So a bad batch costs a little more, a good one much less,
and the errors stay those of the generic path.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.db import DataError, IntegrityError

from trading.api.shapes import is_identifier, nests_within_limit
from trading.services.ingest import jsonb_text
from trading.services.live_state import MarketKey
from trading.services.market import (
    COPY_ESCAPES,
    TIMEFRAME_SECONDS,
    CandleRow,
    InsertCounts,
    RenderedChunk,
    market_data_insert_stream,
)

# A candle's open time may run ahead of the server's clock by this much (a bot's clock skew).
FUTURE_SKEW = timedelta(minutes=5)
PERIOD_MINUTES = {name: seconds // 60 for name, seconds in TIMEFRAME_SECONDS.items()}
STREAM_CANDLES = 1_000  # candles per chunk handed to the writer while the rest are cleaned


class _Candle(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A candle as the fast path takes it: prices as JSON strings (a JSON number, null or any
    field but these makes the decoder refuse the body, and the generic path judge it)."""

    symbol: str
    exchange: str
    timeframe: str
    ts: str
    open: str
    high: str
    low: str
    close: str
    volume: str = "0"
    indicators: dict[str, Any] = msgspec.field(default_factory=dict)


# Numbers inside indicators are read from their text as Decimal, as the generic parser reads them.
_DECODER = msgspec.json.Decoder(list[_Candle], float_hook=Decimal)


class NotFast(Exception):
    """The batch holds a candle the fast path does not take at once; the generic path judges it."""


def candles_decoded(raw: bytes, *, most: int) -> list[_Candle] | None:
    """The batch as structs, or None when the fast path leaves it to the generic one.

    A body holding a \\u escape is left alone: only an escape can bring a NUL or a lone
    surrogate, which the generic parser tags or refuses with its own words."""
    if b"\\u" in raw:
        return None
    try:
        items = _DECODER.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if not 0 < len(items) <= most:
        return None
    return items


def _market_prefix(market: MarketKey, names: dict[str, str]) -> tuple[str, int]:
    """The start of the market's COPY lines (names escaped, the timeframe) and its minutes."""
    symbol, exchange, timeframe = market
    minutes = PERIOD_MINUTES.get(timeframe)
    if minutes is None:
        raise NotFast
    symbol_field = names.get(symbol) or _plain_name(symbol, 64, names)
    exchange_field = names.get(exchange) or _plain_name(exchange, 50, names)
    return f"{symbol_field}\t{exchange_field}\t{timeframe}\t", minutes


def _plain_name(value: str, max_length: int, names: dict[str, str]) -> str:
    """``value`` escaped for COPY, when it is a symbol or exchange the fast path takes (kept in
    ``names``, so that the batch's other candles skip the check): 1 to ``max_length``
    characters, not only spaces, without NUL, and an identifier."""
    if not 0 < len(value) <= max_length or value.isspace():
        raise NotFast
    if "\x00" in value or not is_identifier(value):
        raise NotFast
    escaped = names[value] = value.translate(COPY_ESCAPES)
    return escaped


# Prices are checked a chunk at once, joined by tabs: digits and points only (no sign, exponent,
# space, NaN or underscore), at most 10 digits after a point, which PostgreSQL would otherwise
# round. A tab inside a price passes here and breaks its COPY row (PostgreSQL refuses it); so do
# "", ".", "1.2.3" and more than 18 digits before the point.
_PRICE_CHARACTERS = str.maketrans("", "", "0123456789.\t")
_LONG_FRACTION = re.compile(r"\.[0-9]{11}")
# Open times the fast path takes, checked a chunk at once: ISO-8601 in UTC and whole minutes,
# so that the first 16 characters name the instant (and PostgreSQL reads the text as Python
# does). Another spelling (an offset, a fraction of a second) takes the generic path.
_EARLIEST = "1970-01-01T00:00"
_PLAIN_TIMES = re.compile(
    r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:00(?:\+00:00|Z)\n)*"
)


def candle_chunks(
    items: list[_Candle], *, now: datetime, chunk: int = STREAM_CANDLES
) -> Iterator[RenderedChunk]:
    """The candles as rows and COPY text, ``chunk`` at a time; NotFast at the first candle
    the fast path does not take (the writer, which it stops, has then written nothing).

    A candle repeating one earlier in the batch stays among the rows (it is counted) but not in
    the COPY text. Its key is its COPY line's start: names escaped, the timeframe, the minute."""
    latest = (now + FUTURE_SKEW).astimezone(UTC).isoformat()[:16]
    names: dict[str, str] = {}
    fromisoformat = datetime.fromisoformat
    escapes = COPY_ESCAPES
    seen: set[str] = set()
    prefix = ""
    minutes = 0
    for start in range(0, len(items), chunk):
        # The market of the candle before (none yet: no text equals None), whose names are
        # checked: a batch is mostly one market's candles in a row.
        last: tuple[object, object, object] = (None, None, None)
        rows: list[CandleRow] = []
        lines: list[str] = []
        prices: list[str] = []
        times: list[str] = []
        markets: dict[MarketKey, None] = {}
        for item in items[start : start + chunk]:
            symbol = item.symbol
            exchange = item.exchange
            timeframe = item.timeframe
            if symbol != last[0] or exchange != last[1] or timeframe != last[2]:
                last = market = (symbol, exchange, timeframe)
                prefix, minutes = _market_prefix(market, names)
                markets[market] = None
            text = item.ts
            # Judged as text, the chunk's times found plain below: UTC, whole minutes, and
            # the minute (its first 16 characters) ordered as the text is.
            minute = text[:16]
            if not _EARLIEST <= minute <= latest:
                raise NotFast
            try:
                if minutes != 1 and (int(text[11:13]) * 60 + int(text[14:16])) % minutes:
                    raise NotFast
                ts = fromisoformat(text)  # and a day the calendar has
            except ValueError:
                raise NotFast from None
            indicators = item.indicators
            if indicators:
                indicators_text = _indicators_text(indicators)
                indicators_field = indicators_text.translate(escapes)
            else:
                indicators_text = indicators_field = "{}"
            open_ = item.open
            high = item.high
            low = item.low
            close = item.close
            volume = item.volume
            price_fields = f"{open_}\t{high}\t{low}\t{close}\t{volume}"
            prices.append(price_fields)
            times.append(text)
            rows.append(
                (symbol, exchange, timeframe, ts, open_, high, low, close, volume, indicators_text)
            )
            key = prefix + minute
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"{key}:00+00:00\t{price_fields}\t{indicators_field}\n")
        checked = "\t".join(prices)
        if checked.translate(_PRICE_CHARACTERS) or _LONG_FRACTION.search(checked) is not None:
            raise NotFast
        times.append("")
        if _PLAIN_TIMES.fullmatch("\n".join(times)) is None:
            raise NotFast
        yield RenderedChunk(
            rows, copy_text="".join(lines), repeats=len(rows) - len(lines), markets=markets
        )


def _indicators_text(indicators: dict[str, Any]) -> str:
    if not nests_within_limit(indicators):
        raise NotFast
    try:
        return jsonb_text(indicators)
    except ValueError:  # a number JSON cannot hold
        raise NotFast from None


def candles_insert_fast(raw: bytes, *, now: datetime, most: int) -> InsertCounts | None:
    """Insert the batch by the fast path; None (nothing written) when the generic path must
    judge it: the body not decoded here, a candle not taken at once, or the batch refused by
    PostgreSQL's checks."""
    items = candles_decoded(raw, most=most)
    if items is None:
        return None
    try:
        return market_data_insert_stream(chunks=candle_chunks(items, now=now))
    except NotFast:
        return None
    except (DataError, IntegrityError):  # a CHECK constraint or an input function refused it
        return None
