"""One market's candles of a timeframe as the API serves them: the 1m candles as stored, a
higher timeframe from what bots sent and what was derived from the 1m candles
(trading.services.candles_derived).

How a mix is resolved: bucket by bucket. Where a bot sent a candle of that timeframe for the
bucket (trading.market_data), that candle is served, indicators and all; every other bucket
holding minutes is served from the derived candles (indicators ``{}``). So a market whose
bots send 1h candles is served exactly what they sent, and the hours they did not send are
filled from the minutes.
"""

from datetime import datetime

from trading.models import Timeframe
from trading.selectors.market import (
    MARKET_HEAD_SQL,
    RANGE_SQL,
    CandlePage,
    candle_json_sql,
    candle_page,
)

# The page's candles: what bots sent of the timeframe, and the derived candles of the buckets
# they did not send. Of the derived candles, 2 x (limit + 1) are enough: a derived candle
# among the first limit + 1 served has at most limit + 1 served and limit + 1 sent ones
# before it. Both reads are range scans of their primary or unique index.
#
# The page's JSON is the same text RANGE_SQL writes (json_agg of json_build_object's:
# '{"key" : value, ...}' joined by ', '), written by concatenation, about half the time
# json_build_object takes; a derived candle of 1h and longer brings its text along
# (``candle_json``), which halves that again: a year of 1h candles is 8,760 of them.
MERGED_RANGE_SQL = f"""
WITH sent AS MATERIALIZED (
    SELECT ts, open, high, low, close, volume, indicators, NULL::text AS doc
    FROM trading.market_data
    WHERE symbol = %(symbol)s AND exchange = %(exchange)s AND timeframe = %(timeframe)s
      AND ts >= %(start)s AND ts < %(end)s
    ORDER BY ts
    LIMIT %(limit)s + 1
), served AS (
    SELECT * FROM sent
    UNION ALL
    SELECT * FROM (
        SELECT ts, open, high, low, close, volume, '{{}}'::jsonb AS indicators,
               candle_json AS doc
        FROM trading.market_candles_derived
        WHERE symbol = %(symbol)s AND exchange = %(exchange)s AND timeframe = %(timeframe)s
          AND ts >= %(start)s AND ts < %(end)s
        ORDER BY ts
        LIMIT 2 * (%(limit)s + 1)
    ) d
    WHERE d.ts NOT IN (SELECT ts FROM sent)
), page AS (
    SELECT *, row_number() OVER (ORDER BY ts) AS n FROM served ORDER BY ts LIMIT %(limit)s + 1
), market AS (
    SELECT {MARKET_HEAD_SQL} AS head
)
SELECT
    count(*) > %(limit)s,
    max(page.ts) FILTER (WHERE n <= %(limit)s),
    coalesce(
        '[' || string_agg(
            coalesce(
                page.doc,
                {candle_json_sql(head="market.head", row="page", indicators="page.indicators")}
            ),
            ', ' ORDER BY page.ts
        ) FILTER (WHERE n <= %(limit)s) || ']',
        '[]'
    )
FROM page CROSS JOIN market
"""  # noqa: S608 - constant text


def candles_range(
    *,
    symbol: str,
    exchange: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int,
) -> CandlePage:
    """Up to ``limit`` candles of one market with start <= ts < end, oldest first, as JSON:
    the 1m candles as stored; a higher timeframe as bots sent it, the buckets they did not
    send derived from the minutes."""
    return candle_page(
        RANGE_SQL if timeframe == Timeframe.M1 else MERGED_RANGE_SQL,
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        start=start,
        end=end,
        limit=limit,
    )
