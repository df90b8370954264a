"""The precision a market's prices are shown at: the most decimals among its recent prices.

A market's own tick size is not in the schema; the candles are, and an exchange sends a close
only with the digits its tick allows. So a symbol's price places are the largest
``min_scale(close)`` over the last ``RECENT_CANDLES`` candles of each of its (exchange,
timeframe) series, the largest over its exchanges (the dashboard keys prices by symbol). A
symbol without candles (a perpetual the bots trade whose candles nobody sends) takes the most
decimals among the limit prices of the last ``RECENT_ORDERS`` orders: a bot sends a limit price
at the market's tick. A symbol in neither is absent, and its prices are shown exactly.
docs/DESIGN.md, "Numbers a desk can read", says how the pages use it.

One statement: a loose index scan over the unique index (symbol, exchange, timeframe, ts) finds
the series (one probe each, not a pass over millions of candles), then one backward range of
``RECENT_CANDLES`` rows per series; the orders are the newest by orders_created_idx.
"""

from atb_site.db.replicas import read_connection

RECENT_CANDLES = 100
RECENT_ORDERS = 1000

PRICE_PLACES_SQL = """
WITH RECURSIVE series AS (
    (SELECT symbol, exchange, timeframe FROM trading.market_data
     ORDER BY symbol, exchange, timeframe LIMIT 1)
    UNION ALL
    SELECT n.symbol, n.exchange, n.timeframe FROM series s
    CROSS JOIN LATERAL (
        SELECT m.symbol, m.exchange, m.timeframe FROM trading.market_data m
        WHERE (m.symbol, m.exchange, m.timeframe) > (s.symbol, s.exchange, s.timeframe)
        ORDER BY m.symbol, m.exchange, m.timeframe LIMIT 1
    ) n
), candles AS (
    SELECT s.symbol, max(min_scale(c.close)) AS places FROM series s
    CROSS JOIN LATERAL (
        SELECT m.close FROM trading.market_data m
        WHERE m.symbol = s.symbol AND m.exchange = s.exchange AND m.timeframe = s.timeframe
        ORDER BY m.ts DESC LIMIT %(candles)s
    ) c
    GROUP BY s.symbol
), orders AS (
    SELECT o.symbol, max(min_scale(o.price)) AS places FROM (
        SELECT symbol, price FROM trading.orders WHERE price IS NOT NULL
        ORDER BY created_at DESC LIMIT %(orders)s
    ) o
    GROUP BY o.symbol
)
SELECT symbol, places FROM candles
UNION ALL
SELECT symbol, places FROM orders WHERE symbol NOT IN (SELECT symbol FROM candles)
"""


def price_places() -> dict[str, int]:
    """{symbol: decimals its prices are shown with}; a symbol without candles is absent."""
    with read_connection().cursor() as cursor:
        cursor.execute(PRICE_PLACES_SQL, {"candles": RECENT_CANDLES, "orders": RECENT_ORDERS})
        return {symbol: int(places) for symbol, places in sorted(cursor.fetchall())}
