"""Candles of 5m, 15m, 1h, 4h and 1d derived from the stored 1m candles, kept up to date as
minutes arrive, without reading a market's whole history.

How it stays current:
- The 1m ingest (trading.services.market) calls ``derived_candles_mark`` after it wrote a
  batch, in the batch's transaction: one row in trading.market_candles_backlog per market and
  stretch of minutes the batch held (a few rows, one statement). Nothing is aggregated there:
  the ingest of 10,000 minutes pays about a millisecond, not a re-aggregation.
- ``derived_candles_catch_up`` takes a market's backlog and re-derives only the buckets its
  stretches touch, level by level: the 5m buckets from the 1m candles, 15m from 5m, 1h from
  15m, 4h from 1h, 1d from 4h (each level a whole multiple of the one below and aligned to
  00:00 UTC, so the cascade is exact: the first's open, the last's close, the highs' max, the
  lows' min, the volumes' sum, all numeric). It runs before a read of the market's higher
  timeframes (the API's GET) and for every market by the beat task
  (analytics.derived_candles_catch_up), so a read rarely finds work to do.

Correctness under concurrency: the backlog row commits with its minutes, so a minute visible
to a catch-up is either covered by a backlog row it took, or by one still waiting. Catch-ups of
one market are serialized by a transaction-level advisory lock (PgBouncer's transaction mode
keeps it), taken before the backlog is read, so each one's statements see everything the one
before it committed, and an older catch-up can never write over a newer one's result.

A stored 1m candle is never rewritten (the first writer wins, trading.services.market), so a
bucket changes only when minutes are added to it: a minute sent late, or again with other
values (a duplicate, which changes nothing), or filling a gap.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db import connection, transaction

from trading.db import advisory_lock_key
from trading.models import DerivedTimeframe, Timeframe
from trading.selectors.market import MARKET_HEAD_SQL, candle_json_sql

# Each derived timeframe, its length, and the timeframe it is built from.
LEVELS: tuple[tuple[str, timedelta, str], ...] = (
    (DerivedTimeframe.M5, timedelta(minutes=5), Timeframe.M1),
    (DerivedTimeframe.M15, timedelta(minutes=15), DerivedTimeframe.M5),
    (DerivedTimeframe.H1, timedelta(hours=1), DerivedTimeframe.M15),
    (DerivedTimeframe.H4, timedelta(hours=4), DerivedTimeframe.H1),
    (DerivedTimeframe.D1, timedelta(days=1), DerivedTimeframe.H4),
)
DERIVED_TIMEFRAMES = frozenset(level[0] for level in LEVELS)
# The timeframes whose candles keep their JSON text: their reads span months (a page of 10,000
# 5m candles spans 35 days); about 2% of the minutes' rows, 250 bytes each.
JSON_KEPT = frozenset((DerivedTimeframe.H1, DerivedTimeframe.H4, DerivedTimeframe.D1))
_ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)  # buckets are aligned to 00:00 UTC
# Stretches of one market's minutes in one batch closer than this are marked as one: a day at
# most is re-derived for nothing, and a batch of interleaved minutes stays a few rows.
_JOIN_GAP = timedelta(days=1)
_MINUTE = timedelta(minutes=1)

Span = tuple[str, str, datetime, datetime]  # symbol, exchange, first and last minute

MARK_SQL = """
INSERT INTO trading.market_candles_backlog (symbol, exchange, first_ts, last_ts)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[])
"""
TAKE_SQL = """
DELETE FROM trading.market_candles_backlog
WHERE symbol = %s AND exchange = %s
RETURNING first_ts, last_ts
"""
BACKLOG_ALL_SQL = """
INSERT INTO trading.market_candles_backlog (symbol, exchange, first_ts, last_ts)
SELECT symbol, exchange, min(ts), max(ts) FROM trading.market_data
WHERE timeframe = '1m' GROUP BY symbol, exchange
"""
PENDING_MARKETS_SQL = """
SELECT DISTINCT symbol, exchange FROM trading.market_candles_backlog ORDER BY 1, 2
"""

_FROM_MINUTES = """
    FROM trading.market_data s
    WHERE s.symbol = %(symbol)s AND s.exchange = %(exchange)s AND s.timeframe = '1m'
      AND s.ts >= r.lo AND s.ts < r.hi
"""
_FROM_DERIVED = """
    FROM trading.market_candles_derived s
    WHERE s.symbol = %(symbol)s AND s.exchange = %(exchange)s AND s.timeframe = %(source)s
      AND s.ts >= r.lo AND s.ts < r.hi
"""
# The buckets of one timeframe within the given disjoint ranges (each a whole number of
# buckets), from the level below; a row is written only where its values changed. The long
# timeframes keep their candle's JSON text as the API writes it (candle_json), so that a read
# of a year of them concatenates it instead of writing 8,760 candles' numbers as text.
_DERIVE_SQL = """
INSERT INTO trading.market_candles_derived AS d
    (symbol, exchange, timeframe, ts, open, high, low, close, volume, minutes, candle_json)
SELECT %(symbol)s, %(exchange)s, %(timeframe)s, b.ts, b.open, b.high, b.low, b.close, b.volume,
    b.minutes,
    CASE WHEN %(keep_json)s THEN {json} END
FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(lo, hi)
CROSS JOIN LATERAL (
    SELECT date_bin(%(stride)s, s.ts, %(origin)s) AS ts,
        (array_agg(s.open ORDER BY s.ts))[1]::numeric(28, 10) AS open,
        max(s.high)::numeric(28, 10) AS high,
        min(s.low)::numeric(28, 10) AS low,
        (array_agg(s.close ORDER BY s.ts DESC))[1]::numeric(28, 10) AS close,
        sum(s.volume)::numeric(38, 10) AS volume,
        {minutes} AS minutes
    {source}
    GROUP BY 1
) b
ORDER BY b.ts
ON CONFLICT (symbol, exchange, timeframe, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, minutes = excluded.minutes, candle_json = excluded.candle_json
WHERE (d.open, d.high, d.low, d.close, d.volume, d.minutes, d.candle_json)
    IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close,
                      excluded.volume, excluded.minutes, excluded.candle_json)
"""
_JSON = candle_json_sql(head=f"({MARKET_HEAD_SQL})", row="b", indicators="'{}'::jsonb")
DERIVE_FROM_MINUTES_SQL = _DERIVE_SQL.format(json=_JSON, minutes="count(*)", source=_FROM_MINUTES)
DERIVE_FROM_DERIVED_SQL = _DERIVE_SQL.format(
    json=_JSON, minutes="sum(s.minutes)", source=_FROM_DERIVED
)


def minute_spans(rows: Iterable[tuple[object, ...]]) -> list[Span]:
    """The stretches of 1m candles in ``rows`` (candle rows: symbol, exchange, timeframe, ts
    first) per market, split where a day or more holds none of them. A batch's minutes are
    mostly in a row: then one sort of already sorted times and one comparison."""
    times_of: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for market, run in groupby(rows, key=itemgetter(0, 1, 2)):
        if market[2] == Timeframe.M1:
            times_of[(market[0], market[1])].extend(map(itemgetter(3), run))
    spans: list[Span] = []
    for (symbol, exchange), times in times_of.items():
        times.sort()
        first = times[0]
        if times[-1] - first <= len(times) * _MINUTE + _JOIN_GAP:
            spans.append((symbol, exchange, first, times[-1]))
            continue
        last = first
        for ts in times:
            if ts - last > _JOIN_GAP:
                spans.append((symbol, exchange, first, last))
                first = ts
            last = ts
        spans.append((symbol, exchange, first, last))
    return spans


def derived_candles_mark(*, rows: Iterable[tuple[object, ...]]) -> int:
    """Note the 1m candles of ``rows`` (just written, in the caller's transaction) as not yet
    in the derived candles; how many backlog rows that took. One statement, none without 1m
    candles."""
    spans = minute_spans(rows)
    derived_candles_mark_spans(spans=spans)
    return len(spans)


def derived_candles_mark_spans(*, spans: list[Span]) -> None:
    """Note stretches of 1m candles written by the caller's transaction (for a writer that
    knows them without the rows: the demo's candles) as not yet in the derived candles."""
    if spans:
        with connection.cursor() as cursor:
            cursor.execute(MARK_SQL, [list(column) for column in zip(*spans, strict=True)])


def _bucket_ranges(
    stretches: list[tuple[datetime, datetime]], stride: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """The stretches widened to whole buckets of ``stride`` and joined where they meet: the
    lower and upper bounds of disjoint ranges (an INSERT ... ON CONFLICT may meet a row once)."""
    los: list[datetime] = []
    his: list[datetime] = []
    for first, last in sorted(stretches):
        lo = first - (first - _ORIGIN) % stride
        hi = last - (last - _ORIGIN) % stride + stride
        if his and lo <= his[-1]:
            his[-1] = max(his[-1], hi)
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def derived_candles_lock_key(symbol: str, exchange: str) -> int:
    """The advisory lock serializing the catch-ups of one market."""
    return advisory_lock_key(f"trading.derived_candles:{symbol}:{exchange}")


def derived_candles_catch_up(*, symbol: str, exchange: str) -> int:
    """Bring the market's derived candles up to date with its backlog; how many backlog rows
    were taken. Only the buckets the backlog touches are read and written; a market without a
    backlog costs one index probe, no lock and no write."""
    if not derived_candles_pending(symbol=symbol, exchange=exchange):
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [derived_candles_lock_key(symbol, exchange)]
        )
        cursor.execute(TAKE_SQL, [symbol, exchange])
        stretches = [(first, last) for first, last in cursor.fetchall()]
        if not stretches:
            return 0
        for timeframe, stride, source in LEVELS:
            los, his = _bucket_ranges(stretches, stride)
            params: dict[str, Any] = {
                "symbol": symbol,
                "exchange": exchange,
                "timeframe": str(timeframe),
                "source": str(source),
                "stride": stride,
                "origin": _ORIGIN,
                "lo": los,
                "hi": his,
                "keep_json": timeframe in JSON_KEPT,
            }
            sql = DERIVE_FROM_MINUTES_SQL if source == Timeframe.M1 else DERIVE_FROM_DERIVED_SQL
            cursor.execute(sql, params)
    return len(stretches)


def derived_candles_pending(*, symbol: str, exchange: str) -> bool:
    """Whether the market has minutes not yet in its derived candles (one index probe)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM trading.market_candles_backlog "
            "WHERE symbol = %s AND exchange = %s)",
            [symbol, exchange],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def derived_candles_catch_up_all() -> int:
    """Every market's backlog worked off, one market (one transaction) at a time; how many
    markets had one."""
    with connection.cursor() as cursor:
        cursor.execute(PENDING_MARKETS_SQL)
        markets = cursor.fetchall()
    for symbol, exchange in markets:
        derived_candles_catch_up(symbol=symbol, exchange=exchange)
    return len(markets)


def derived_candles_backfill() -> int:
    """Every market's derived candles from all its minutes: for a table loaded without the
    ingest path (the bench's data set). Reads every 1m candle once; how many markets."""
    with connection.cursor() as cursor:
        cursor.execute(BACKLOG_ALL_SQL)
    return derived_candles_catch_up_all()
