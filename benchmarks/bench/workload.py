"""What the bench sends: trades and candles as a bot would, the HTTP client, the raw-SQL twins.

Every row is made once as typed Python values; the API gets it as JSON (money as decimal
strings), the raw baseline gets the very same values through psycopg.
"""

import http.client
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from benchmarks.bench.scratch import BenchError
from trading.models import Bot, BotMode
from trading.services.ingest import TRADE_COLUMNS, trade_derived_fields

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # candles: minute by minute from here


def _live_start() -> datetime:
    """Where the trades' entry times start: 40 minutes ago, but not before today (UTC). A live
    bot reports what it entered today; a trade entered before today also marks its bot's
    stale risk_metrics days (trading/services/ingest/backlog.py), a write the raw INSERT it is
    compared with does not make and a live bot's sends do not need."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(midnight, now - timedelta(minutes=40))


LIVE_T0 = _live_start()
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
TRADE_NAMES = [name for name, _ in TRADE_COLUMNS]
CANDLE_NAMES = ["symbol", "exchange", "timeframe", "ts", "open", "high", "low", "close", "volume"]

Row = dict[str, Any]


def paper_bot(bot_id: str, *, name: str, strategy_type: str) -> Bot:
    """A bench bot, not saved yet: paper trading on binance with 10,000 USD."""
    return Bot(
        bot_id=bot_id,
        name=name,
        strategy_type=strategy_type,
        exchange="binance",
        mode=BotMode.PAPER,
        initial_capital_usd=Decimal(10_000),
    )


# --- Rows ---------------------------------------------------------------------------------------


def trade_rows(prefix: str, start: int, count: int) -> list[Row]:
    """Trades as a live bot reports them, entered today 0.1 s apart: every other one closed
    (its pnl left to the server)."""
    rows: list[Row] = []
    for i in range(start, start + count):
        entry_time = LIVE_T0 + timedelta(milliseconds=100 * i)
        entry_price = Decimal("60000.5") + Decimal(i % 997) / 8
        closed = i % 2 == 1
        rows.append(
            {
                "trade_id": f"{prefix}-{i}",
                "symbol": SYMBOLS[i % len(SYMBOLS)],
                "exchange": "binance",
                "side": "short" if i % 3 == 0 else "long",
                "quantity": Decimal("0.0125"),
                "entry_price": entry_price,
                "exit_price": entry_price * Decimal("1.004") if closed else None,
                "entry_time": entry_time,
                "exit_time": entry_time + timedelta(seconds=45) if closed else None,
                "fees_usd": Decimal("0.75"),
                "status": "closed" if closed else "open",
                "leverage": Decimal(1),
                "exit_reason": "take_profit" if closed else "",
                "entry_tag": "breakout",
                "strategy_data": {"rsi": 61, "atr": "412.5"},
            }
        )
    return rows


def candle_rows(symbol: str, start: int, count: int) -> list[Row]:
    """One-minute candles of ``symbol`` from minute ``start`` on."""
    rows: list[Row] = []
    for i in range(start, start + count):
        open_ = Decimal("60000.25") + Decimal(i % 997) / 4
        rows.append(
            {
                "symbol": symbol,
                "exchange": "binance",
                "timeframe": "1m",
                "ts": T0 + timedelta(minutes=i),
                "open": open_,
                "high": open_ + Decimal("12.5"),
                "low": open_ - Decimal("9.75"),
                "close": open_ + Decimal("3.125"),
                "volume": Decimal("15.4321"),
            }
        )
    return rows


def _wire(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(rows: list[Row], *, single: bool = False) -> bytes:
    items = [{k: _wire(v) for k, v in row.items() if v is not None} for row in rows]
    return json.dumps(items[0] if single else items).encode()


def stored_trade(row: Row, *, bot_id: str, source: str, now: datetime) -> tuple[Any, ...]:
    """The row the API would store for ``row``, as values for the raw statements."""
    full = trade_derived_fields({**row, "pnl_usd": None, "source": source})
    values = [full[name] for name in TRADE_NAMES]
    values[TRADE_NAMES.index("strategy_data")] = json.dumps(full["strategy_data"])
    return (bot_id, *values, now, now)


# --- The HTTP client ----------------------------------------------------------------------------


class ApiClient:
    """One connection (kept alive when the server allows it) for one client thread."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        """(status, body, seconds) of one POST."""
        started = time.perf_counter()
        self.connection.request("POST", path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started

    def post_ok(self, path: str, body: bytes, *, expect: dict[str, int]) -> float:
        status, data, seconds = self.post(path, body)
        if status != 200:
            raise BenchError(f"POST {path} answered {status}: {data[:500]!r}")
        answer = json.loads(data)
        if any(answer.get(k) != v for k, v in expect.items()):
            raise BenchError(f"POST {path} answered {answer}, expected {expect}")
        return seconds

    def close(self) -> None:
        self.connection.close()


# --- Raw SQL: the baselines ---------------------------------------------------------------------

_TRADE_COLUMNS_SQL = ", ".join(["bot_id", *TRADE_NAMES, "created_at", "updated_at"])
RAW_TRADE_INSERT = (
    f"INSERT INTO trading.trades ({_TRADE_COLUMNS_SQL}) "  # noqa: S608 - constant identifiers
    f"VALUES ({', '.join(['%s'] * (len(TRADE_NAMES) + 3))})"
)
RAW_TRADE_COPY = f"COPY trading.trades ({_TRADE_COLUMNS_SQL}) FROM STDIN"
RAW_CANDLE_COPY = (
    f"COPY trading.market_data ({', '.join([*CANDLE_NAMES, 'indicators'])}) FROM STDIN"
)


def raw_insert_one(conn: psycopg.Connection[Any], values: tuple[Any, ...]) -> float:
    """One autocommitted INSERT of one trade: a single round trip."""
    params = list(values)
    jsonb_at = 1 + TRADE_NAMES.index("strategy_data")
    params[jsonb_at] = Jsonb(json.loads(params[jsonb_at]))
    started = time.perf_counter()
    conn.execute(RAW_TRADE_INSERT, params)
    return time.perf_counter() - started


def raw_copy(conn: psycopg.Connection[Any], statement: str, rows: list[tuple[Any, ...]]) -> float:
    """COPY ``rows`` in one transaction (BEGIN, COPY, COMMIT), as the API writes a batch."""
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - started


def candle_values(row: Row) -> tuple[Any, ...]:
    return (*(row[name] for name in CANDLE_NAMES), "{}")
