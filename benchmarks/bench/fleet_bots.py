"""What each simulated bot sends, and what the dashboard client reads.

A bot, from its start (spread over the first heartbeat interval), sends:

- ``POST heartbeat/`` every 5 s (status and equity);
- one trade or order update every few seconds (3 s by default), going round a trade's life:
  entry order submitted, entry order filled, trade opened, exit order submitted (with the
  trade_id), exit order filled, trade closed (exit price and time; the server works out pnl);
- ``POST balances/`` (a periodic snapshot) and ``POST market-data/`` (its market's last 1m
  candle; the bots on one market send the same candle, the server skips the duplicates) on
  start and then every minute.

Every interval is drawn afresh within +/- 20 % of its mean, so the fleet never fires in
lockstep. Each timer keeps its own schedule (the next send is due from the last one's due
time, not from its answer), so a slow server meets the same load, not a lighter one.

The dashboard client reloads both pages every few seconds as a browser would: the page's HTML,
then the JSON calls static/dashboard/dashboard.js makes for it, all at once (its Promise.all),
with the addresses the page itself gives (its ``dashboard-config``). The bot page goes round
the fleet's bots.
"""

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlencode

from benchmarks.bench.fleet_client import Answer, Recorder

JITTER = 0.2  # each interval drawn within +/- 20 % of its mean
MARKETS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT")
EXCHANGE = "binance"
CONFIG_SCRIPT = re.compile(rb'<script id="dashboard-config" type="application/json">(.*?)</script>')


@dataclass(frozen=True)
class Cadence:
    heartbeat: float = 5.0
    activity: float = 3.0  # one trade or order update
    minute: float = 60.0  # balances and the candle


@dataclass(frozen=True)
class FleetBot:
    bot_id: str
    token: str
    market: str


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.00000001")))


def _now() -> datetime:
    return datetime.now(UTC)


class SimulatedBot:
    def __init__(self, bot: FleetBot, recorder: Recorder, rng: random.Random) -> None:
        self.bot = bot
        self.recorder = recorder
        self.rng = rng
        self.headers = {
            "Authorization": f"Bearer {bot.token}",
            "Content-Type": "application/json",
        }
        self.price = Decimal(1000 + rng.randrange(60_000))
        self.equity = Decimal(10_000)
        self.trades = 0
        self.entry_time = _now()
        self.step = 0
        self.steps: list[Callable[[float], Awaitable[None]]] = [
            self._entry_submitted,
            partial(self._order_update, "entry", "filled"),
            self._trade_opened,
            partial(self._order_update, "exit", "submitted"),
            partial(self._order_update, "exit", "filled"),
            self._trade_closed,
        ]

    async def run(self, cadence: Cadence, until: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, cadence.heartbeat))
        await asyncio.gather(
            _every(cadence.heartbeat, self.rng, until, self.heartbeat),
            _every(cadence.activity, self.rng, until, self._activity),
            _every(cadence.minute, self.rng, until, self.balance),
            _every(cadence.minute, self.rng, until, self.candle),
        )

    async def _post(self, name: str, path: str, body: Any, due: float) -> Answer | None:
        data = json.dumps(body).encode()
        return await self.recorder.call(name, "POST", path, self.headers, data, due=due)

    async def heartbeat(self, due: float) -> None:
        body = {"status": "active", "equity_usd": _money(self.equity)}
        await self._post("POST heartbeat/", "/api/v1/heartbeat/", body, due)

    async def balance(self, due: float) -> None:
        body = {
            "ts": _now().isoformat(),
            "balance_usd": _money(self.equity),
            "equity_usd": _money(self.equity),
        }
        await self._post("POST balances/", "/api/v1/balances/", body, due)

    async def candle(self, due: float) -> None:
        minute = _now().replace(second=0, microsecond=0) - timedelta(minutes=1)
        # The same market's candle is the same for every bot on it: derived from the minute.
        base = Decimal(1000 + MARKETS.index(self.bot.market) * 997) + minute.minute
        body = [
            {
                "symbol": self.bot.market,
                "exchange": EXCHANGE,
                "timeframe": "1m",
                "ts": minute.isoformat(),
                "open": _money(base),
                "high": _money(base + Decimal("2.5")),
                "low": _money(base - Decimal("1.25")),
                "close": _money(base + Decimal("0.75")),
                "volume": "12.345",
            }
        ]
        await self._post("POST market-data/", "/api/v1/market-data/", body, due)

    async def _activity(self, due: float) -> None:
        """The next step of the trade's life at each call, round and round."""
        index = self.step % len(self.steps)
        self.step += 1
        await self.steps[index](due)

    @property
    def _trade_id(self) -> str:
        return f"{self.bot.bot_id}-t{self.trades}"

    def _order(self, leg: str, status: str, *, trade: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_order_id": f"{self._trade_id}-{leg}",
            "symbol": self.bot.market,
            "side": "buy" if leg == "entry" else "sell",
            "order_type": "market",
            "quantity": "0.01",
            "status": status,
            "submitted_at": _now().isoformat(),
        }
        if status == "filled":
            body["filled_at"] = _now().isoformat()
        if trade:
            body["trade_id"] = self._trade_id
        return body

    async def _entry_submitted(self, due: float) -> None:
        """A new trade's life starts: its entry order."""
        self.trades += 1
        self.price *= Decimal(1) + Decimal(self.rng.randrange(-50, 51)) / 10_000
        self.entry_time = _now()
        await self._order_update("entry", "submitted", due)

    async def _order_update(self, leg: str, status: str, due: float) -> None:
        body = self._order(leg, status, trade=leg == "exit")
        await self._post("POST orders/", "/api/v1/orders/", body, due)

    def _trade(self) -> dict[str, Any]:
        return {
            "trade_id": self._trade_id,
            "symbol": self.bot.market,
            "exchange": EXCHANGE,
            "side": "long",
            "quantity": "0.01",
            "entry_price": _money(self.price),
            "entry_time": self.entry_time.isoformat(),
            "fees_usd": "0.05",
            "status": "open",
            "leverage": "1",
            "entry_tag": "fleet",
            "strategy_data": {"rsi": 55},
        }

    async def _trade_opened(self, due: float) -> None:
        await self._post("POST trades/", "/api/v1/trades/", self._trade(), due)

    async def _trade_closed(self, due: float) -> None:
        exit_price = self.price * (Decimal(1) + Decimal(self.rng.randrange(-80, 101)) / 10_000)
        body = {
            **self._trade(),
            "status": "closed",
            "exit_price": _money(exit_price),
            "exit_time": _now().isoformat(),
            "exit_reason": "take_profit" if exit_price > self.price else "stop_loss",
        }
        self.equity += (exit_price - self.price) * Decimal("0.01") - Decimal("0.1")
        await self._post("POST trades/", "/api/v1/trades/", body, due)


async def _every(
    mean: float, rng: random.Random, until: float, send: Callable[[float], Awaitable[None]]
) -> None:
    """``send(due)`` now and then every ``mean`` s (+/- JITTER) until ``until``."""
    due = time.perf_counter()
    while due < until:
        await send(due)
        due += mean * rng.uniform(1 - JITTER, 1 + JITTER)
        if due >= until:
            return
        await asyncio.sleep(max(0.0, due - time.perf_counter()))


# --- The dashboard --------------------------------------------------------------------------


class DashboardClient:
    """A staff browser reloading the portfolio page and a bot's page, one after the other."""

    def __init__(self, recorder: Recorder, cookie: str, bot_ids: list[str]) -> None:
        self.recorder = recorder
        self.headers = {"Cookie": cookie, "Accept": "application/json"}
        self.bot_ids = bot_ids
        self.loads = 0

    async def run(self, every: float, rng: random.Random, until: float) -> None:
        await _every(every, rng, until, self.reload)

    async def reload(self, due: float) -> None:
        """Both pages; the bot page goes round the client's bots."""
        bot_id = self.bot_ids[self.loads % len(self.bot_ids)]
        self.loads += 1
        await self.portfolio(due)
        await self.bot_page(bot_id, time.perf_counter())

    async def _page(self, name: str, path: str, due: float) -> dict[str, Any] | None:
        answer = await self.recorder.call(name, "GET", path, self.headers, due=due)
        if answer is None:
            return None
        found = CONFIG_SCRIPT.search(answer.body)
        return json.loads(found.group(1)) if found else None

    async def _all(self, calls: list[tuple[str, str, dict[str, Any]]]) -> None:
        due = time.perf_counter()
        await asyncio.gather(
            *(
                self.recorder.call(
                    name,
                    "GET",
                    f"{path}?{urlencode(query)}" if query else path,
                    self.headers,
                    due=due,
                )
                for name, path, query in calls
            )
        )

    async def portfolio(self, due: float) -> None:
        config = await self._page("GET dashboard/ (HTML)", "/dashboard/", due)
        if config is None:
            return
        api = config["api"]
        since = (_now() - timedelta(hours=config["snapshot_hours"])).isoformat()
        await self._all(
            [
                ("GET portfolio/summary/", api["summary"], {}),
                ("GET portfolio/snapshots/", api["snapshots"], {"since": since, "page_size": 1000}),
                ("GET positions/ (open)", api["positions"], {"status": "open", "page_size": 50}),
                ("GET risk-events/", api["risk_events"], {"page_size": 10}),
                ("GET portfolio/performance/", api["performance"], {"period": "day"}),
            ]
        )

    async def bot_page(self, bot_id: str, due: float) -> None:
        config = await self._page(
            "GET dashboard/bots/{bot_id}/ (HTML)", f"/dashboard/bots/{bot_id}/", due
        )
        if config is None:
            return
        api = config["api"]
        await self._all(
            [
                ("GET bots/{bot_id}/summary/", api["summary"], {}),
                (
                    "GET bots/{bot_id}/equity/",
                    api["equity"],
                    {"max_points": config["equity_max_points"]},
                ),
                ("GET bots/{bot_id}/performance/", api["performance"], {"period": "month"}),
                ("GET bots/{bot_id}/breakdown/", api["breakdown"], {"by": "exit_reason"}),
                ("GET trades/ (a bot's 20)", api["trades"], {"bot_id": bot_id, "page_size": 20}),
            ]
        )
