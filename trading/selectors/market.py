"""Reads of the shared candle table, each served by the unique index
(symbol, exchange, timeframe, ts): a range scan for a series, one backward probe for the latest
candle of a market.

Prices and volumes are read as text (``numeric::text``), so a candle reaches the client with
every digit PostgreSQL holds and no float or Decimal round trip in between.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from atb_site.db.replicas import read_connection
from trading.services.live_state import (
    MarketKey,
    Price,
    iso_utc,
    price_cache_epoch,
    price_cache_read,
    price_cache_update,
)

_PRICE_COLUMNS = (
    "m.symbol, m.exchange, m.timeframe, m.ts, "
    "m.open::text, m.high::text, m.low::text, m.close::text, m.volume::text"
)

_LATEST_LATERAL = f"""
CROSS JOIN LATERAL (
    SELECT {_PRICE_COLUMNS} FROM trading.market_data m
    WHERE m.symbol = k.symbol AND m.exchange = k.exchange AND m.timeframe = k.timeframe
    ORDER BY m.ts DESC LIMIT 1
) l
"""  # noqa: S608 - constant text

LATEST_FOR_KEYS_SQL = f"""
SELECT l.* FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(symbol, exchange, timeframe)
{_LATEST_LATERAL}
ORDER BY 1, 2, 3
"""  # noqa: S608 - constant text


def _price(row: tuple[Any, ...]) -> Price:
    symbol, exchange, timeframe, ts, open_, high, low, close, volume = row
    return {
        "symbol": symbol,
        "exchange": exchange,
        "timeframe": timeframe,
        "ts": iso_utc(ts),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }


def market_latest_for_keys(*, keys: list[MarketKey]) -> list[Price]:
    """The latest stored candle of each market in ``keys`` (markets without one are left out),
    in one statement: one backward index probe per market."""
    if not keys:
        return []
    symbols, exchanges, timeframes = (list(part) for part in zip(*keys, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(LATEST_FOR_KEYS_SQL, [symbols, exchanges, timeframes])
        return [_price(row) for row in cursor.fetchall()]


def market_latest(
    *, symbol: str | None = None, exchange: str | None = None, timeframe: str | None = None
) -> list[Price]:
    """The latest candle of every market matching the filters, ordered by market.

    The markets are found by a loose index scan (a recursive CTE hopping from one
    (symbol, exchange, timeframe) to the next on the unique index), not by reading the table:
    two index probes per market, however many candles each holds.
    """
    conditions: list[str] = []
    params: list[str] = []
    for column, value in (("symbol", symbol), ("exchange", exchange), ("timeframe", timeframe)):
        if value is not None:
            conditions.append(f"d.{column} = %s")
            params.append(value)
    where = " AND ".join(conditions) or "TRUE"
    sql = f"""
    WITH RECURSIVE k AS (
        (SELECT d.symbol, d.exchange, d.timeframe FROM trading.market_data d
         WHERE {where} ORDER BY 1, 2, 3 LIMIT 1)
        UNION ALL
        SELECT n.symbol, n.exchange, n.timeframe FROM k CROSS JOIN LATERAL (
            SELECT d.symbol, d.exchange, d.timeframe FROM trading.market_data d
            WHERE (d.symbol, d.exchange, d.timeframe) > (k.symbol, k.exchange, k.timeframe)
              AND {where}
            ORDER BY 1, 2, 3 LIMIT 1
        ) n
    )
    SELECT l.* FROM k {_LATEST_LATERAL} ORDER BY 1, 2, 3
    """  # noqa: S608 - the conditions are constant text; the values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params + params)
        return [_price(row) for row in cursor.fetchall()]


def prices_latest(
    *, symbol: str | None = None, exchange: str | None = None, timeframe: str | None = None
) -> list[Price]:
    """The latest candle of every market matching the filters, from Redis when it can answer.

    Redis answers once seeded in the price cache's current epoch (it then holds every market's
    latest candle, kept current by the ingest path); an exact market it lacks is looked up in
    PostgreSQL. Unseeded (or seeded before a price missed Redis), one read takes every market's
    latest candle from PostgreSQL and seeds Redis; unreachable, PostgreSQL answers every read.
    """
    wanted = (symbol, exchange, timeframe)

    def matches(price: Price) -> bool:
        return all(
            value is None or price[name] == value
            for name, value in zip(("symbol", "exchange", "timeframe"), wanted, strict=True)
        )

    cached = price_cache_read()
    if cached is None:
        return market_latest(symbol=symbol, exchange=exchange, timeframe=timeframe)
    if cached.seeded:
        found = [price for key, price in sorted(cached.prices.items()) if matches(price)]
        if not found and symbol is not None and exchange is not None and timeframe is not None:
            found = market_latest_for_keys(keys=[(symbol, exchange, timeframe)])
            price_cache_update(candles=found)
        return found
    epoch = price_cache_epoch()  # before the read: a price missed after it moves it on
    every = market_latest()
    price_cache_update(candles=every, seeded_epoch=epoch)
    return [price for price in every if matches(price)]


# --- Series -----------------------------------------------------------------------------------

# One candle as the JSON text json_build_object writes ('{"key" : value, ...}'), from the head
# (the candle's market and the start of its "ts") and its columns: each row of a page, and the
# text derived candles of the long timeframes keep (``candle_json``, trading.services.
# candles_derived).
MARKET_HEAD_SQL = """
    '{"symbol" : ' || to_json(%(symbol)s::text)::text
    || ', "exchange" : ' || to_json(%(exchange)s::text)::text
    || ', "timeframe" : ' || to_json(%(timeframe)s::text)::text || ', "ts" : "'
"""


def candle_json_sql(*, head: str, row: str, indicators: str, ts_json: str | None = None) -> str:
    """The SQL expression of a candle's JSON text: ``head`` (MARKET_HEAD_SQL's value), the
    columns of ``row`` (ts, open, high, low, close, volume), ``indicators`` (jsonb), and
    optionally ``ts_json``, the row's TS_JSON_SQL computed once (a column of ``row``).

    The same bytes whichever way (tests/api/test_candle_text.py compares them with
    json_build_object's). Written by one concat() of text values, not a chain of ``||``: each
    ``||`` copies the growing candle again (about twice concat()'s time a candle). The time
    comes from TS_JSON_SQL, a third of to_char()'s cost, when the row has it and it holds
    whole seconds (21 bytes: '"YYYY-MM-DDTHH:MI:SS"'), else from to_char(); empty indicators
    (what nearly every candle holds) are written without jsonb's output function.
    """
    to_char = (
        f"replace(to_char({row}.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
        "'.000000', '')"
    )
    ts = (
        to_char
        if ts_json is None
        else f"CASE WHEN octet_length({ts_json}) = 21 THEN substr({ts_json}, 2, 19) "
        f"ELSE {to_char} END"
    )
    return f"""
    concat(
        {head}, {ts},
        'Z", "open" : "', {row}.open::text,
        '", "high" : "', {row}.high::text,
        '", "low" : "', {row}.low::text,
        '", "close" : "', {row}.close::text,
        '", "volume" : "', {row}.volume::text,
        '", "indicators" : ',
        CASE WHEN {indicators} = '{{}}'::jsonb THEN '{{}}' ELSE {indicators}::text END,
        '}}'
    )
    """


# A candle's time as JSON writes a timestamp ('"2026-12-07T23:27:00"', fractions of a second
# only when there are some, without trailing zeros): ISO-8601 whatever the session's DateStyle
# and TimeZone. candle_json_sql uses it for whole seconds; to_char() writes the others.
TS_JSON_SQL = "to_json(ts AT TIME ZONE 'UTC')::text"


_PAGE_CANDLE = candle_json_sql(
    head="market.head", row="page", indicators="page.indicators", ts_json="page.ts_json"
)

# One market's candles, and the JSON of the page built by PostgreSQL: the range scan reads them
# in index order and each candle's JSON is written as text and joined in that order (the same
# bytes json_agg(json_build_object(...)) wrote, at about a third of its cost: no JSON value per
# candle, and no sort of the page inside the aggregate, which spilled a month of candles to
# disk). Times as the rest of the API writes them (ISO-8601, UTC, "Z", microseconds only when
# there are some); prices as the numeric's text; the market's names written once a page.
# Whether another page follows is one index probe past the page's last candle, bounded below by
# the page's start too: then the planner keeps only the months of [start, end) for it, as for
# the page (bounded by the last candle alone, a run-time value, it planned a probe of every
# month before the end: about 1 ms of planning a read on a year of months, issue 15).
RANGE_SQL = f"""
WITH page AS (
    SELECT ts, {TS_JSON_SQL} AS ts_json, open, high, low, close, volume, indicators
    FROM trading.market_data
    WHERE symbol = %(symbol)s AND exchange = %(exchange)s AND timeframe = %(timeframe)s
      AND ts >= %(start)s AND ts < %(end)s
    ORDER BY ts
    LIMIT %(limit)s
), market AS (
    SELECT {MARKET_HEAD_SQL} AS head  -- once a page, not once a candle
), written AS (
    SELECT max(page.ts) AS last_ts, string_agg({_PAGE_CANDLE}, ', ') AS candles
    FROM page CROSS JOIN market  -- in the page's order: the aggregate reads the ordered scan
)
SELECT
    EXISTS (
        SELECT FROM trading.market_data m
        WHERE m.symbol = %(symbol)s AND m.exchange = %(exchange)s
          AND m.timeframe = %(timeframe)s AND m.ts > w.last_ts
          AND m.ts >= %(start)s AND m.ts < %(end)s
    ),
    w.last_ts,
    coalesce('[' || w.candles || ']', '[]')  -- not concat(): slower on one page-long text
FROM written w
"""  # noqa: S608 - constant text


# A large page is read with random reads priced as cached ones. The open month lies in arrival
# order (a minute of every market per page), so at the default random_page_cost the planner
# prices the index scan of its share as random reads and takes a bitmap scan, then sorts the
# whole page by ts, past work_mem for a month of candles (to disk). Priced as the cached (or
# SSD) pages they are, each month's index scan in turn gives the page in order: no sort.
LARGE_PAGE = 2_000
CACHED_PAGES_SQL = "SET LOCAL random_page_cost = 1.1"


# Bounds wide enough for any candle the API accepts (1970 to 9998), so that one statement (and
# one plan shape) serves every request.
_EARLIEST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_LATEST = datetime.fromisoformat("9999-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class CandlePage:
    candles_json: str  # a JSON array of candles, oldest first
    more: bool  # candles follow the page
    last_ts: datetime | None  # the open time of the page's last candle


def market_data_range(
    *,
    symbol: str,
    exchange: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int,
) -> CandlePage:
    """Up to ``limit`` candles of one market with start <= ts < end, oldest first, as JSON."""
    return candle_page(
        RANGE_SQL,
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        start=start,
        end=end,
        limit=limit,
    )


def candle_page(
    sql: str,
    *,
    symbol: str,
    exchange: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> CandlePage:
    """The page ``sql`` writes for these parameters: one row of (whether candles follow, the
    last candle's time, the candles' JSON array)."""
    params: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "timeframe": timeframe,
        "start": start or _EARLIEST,
        "end": end or _LATEST,
        "limit": limit,
    }
    # A staff read's from a replica (atb_site/db/replicas.py); the latest prices above always
    # from the primary, since they seed the price cache in Redis.
    reader = read_connection()
    if limit > LARGE_PAGE:
        with transaction.atomic(using=reader.alias), reader.cursor() as cursor:
            cursor.execute(CACHED_PAGES_SQL)
            return _page(cursor, sql, params)
    with reader.cursor() as cursor:
        return _page(cursor, sql, params)


def _page(cursor: Any, sql: str, params: dict[str, Any]) -> CandlePage:
    cursor.execute(sql, params)
    # An aggregate without GROUP BY answers exactly one row.
    more, last_ts, candles_json = cursor.fetchone() or (False, None, "[]")
    return CandlePage(candles_json=candles_json, more=bool(more), last_ts=last_ts)
