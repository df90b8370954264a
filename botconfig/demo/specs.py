"""What the demo is made of: three markets, three bots and their configurations."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from trading.models import BotMode, OrderType

SEED = "atb-demo-14"  # one whose month looks ordinary: markets end within 10%, win rates near 50%
HISTORY_DAYS = 30  # trades, balances and signals
CANDLE_DAYS = 7  # one-minute candles
EXCHANGE = "binance"

PRICE = Decimal("1e-10")  # prices and quantities: NUMERIC(28, 10)
USD = Decimal("1e-8")  # USD amounts: NUMERIC(20, 8)
PCT = Decimal("1e-6")  # percentages and ratios: NUMERIC(12, 6)
HUNDRED = Decimal(100)
ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Market:
    symbol: str
    start_price: Decimal
    tick: Decimal
    lot: Decimal
    minute_vol: float  # standard deviation of a one-minute return
    minute_volume: Decimal  # typical base-currency volume of a one-minute candle


def _market(symbol: str, price: str, tick: str, lot: str, vol: float, volume: str) -> Market:
    return Market(symbol, Decimal(price), Decimal(tick), Decimal(lot), vol, Decimal(volume))


MARKETS = {
    "BTC": _market("BTC/USDT", "64250", "0.01", "0.00001", 0.0005, "14"),
    "ETH": _market("ETH/USDT", "3180", "0.01", "0.0001", 0.0007, "160"),
    "SOL": _market("SOL/USDT", "148.5", "0.01", "0.001", 0.0009, "2400"),
}


@dataclass(frozen=True)
class BotSpec:
    bot_id: str
    name: str
    strategy_type: str
    mode: BotMode
    initial_capital: Decimal
    symbols: tuple[tuple[str, str], ...]  # (the symbol the bot trades, its key in MARKETS)
    long_share: float  # how often it goes long
    trend_skill: float  # how often it declines an entry against the current trend
    stake_usd: tuple[int, int]
    maker_fee: Decimal
    taker_fee: Decimal
    entry_order_type: OrderType
    hold_minutes: tuple[int, int]  # the strategy's exit signal comes after this long at the latest
    gap_minutes: tuple[int, int]  # flat time between two trades of one symbol
    open_symbols: tuple[str, ...]  # symbols with a trade still running at the end
    trade_prefix: str
    signal_type: str
    entry_tags: tuple[str, ...]
    filters: tuple[str, ...]
    skipped_signals: int
    heartbeat_age: timedelta
    config: dict[str, Any]
    config_v2: dict[str, Any] | None = None
    config_v2_reason: str = ""
    # The name its random draws are seeded with: the bot's id before the demo bots got ids of
    # their own (demo_*), so the data set (and every figure the tests pin) stays the same.
    draw_name: str = ""

    @property
    def risk(self) -> dict[str, Any]:
        return dict(self.config["risk"])

    @property
    def quiet_minutes(self) -> int:
        """Whole minutes at the end of the history in which the bot traded no more: a bot whose
        heartbeat stopped minutes ago closed nothing after it."""
        minutes = int(self.heartbeat_age / timedelta(minutes=1))
        return minutes + 1 if minutes else 0

    @property
    def leverage(self) -> Decimal:
        return Decimal(str(self.config["risk"]["leverage"]))


def _config(
    market_type: str, symbols: list[str], timeframe: str, strategy: dict[str, Any],
    risk: dict[str, Any], *, pause_on_breach: bool,
) -> dict[str, Any]:  # fmt: skip
    return {
        "exchange": {"name": EXCHANGE, "market_type": market_type},
        "symbols": symbols,
        "timeframe": timeframe,
        "strategy": strategy,
        "risk": risk,
        "pause_on_breach": pause_on_breach,
        "heartbeat_interval_s": 30,
    }


def _risk(
    size: int, daily_loss: int, drawdown_pct: int, max_leverage: int, leverage: int,
    stop_loss_pct: float, take_profit_pct: float, trail_at_pct: float, trail_pct: float,
    max_open: int = 3,
) -> dict[str, Any]:  # fmt: skip
    return {
        "max_position_size_usd": size,
        "max_daily_loss_usd": daily_loss,
        "daily_loss_window": "rolling_24h",
        "max_drawdown_pct": drawdown_pct,
        "max_leverage": max_leverage,
        "max_open_positions": max_open,
        "leverage": leverage,
        "stop_loss_pct": stop_loss_pct,
        "take_profit_pct": take_profit_pct,
        "trailing_stop": {"activation_pct": trail_at_pct, "distance_pct": trail_pct},
        "warn_at_pct": 75,
    }


_KEYS = ("BTC", "ETH", "SOL")
_PERPS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
_SPOT = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
_MOMENTUM_STRATEGY = {"fast_ema": 21, "slow_ema": 55, "min_volume_ratio": 1.5}

SPECS = (
    BotSpec(
        bot_id="demo_shortseller",
        draw_name="shortseller_001",
        name="Shortseller",
        strategy_type="short_biased_multi_asset",
        mode=BotMode.LIVE,
        initial_capital=Decimal(25000),
        symbols=tuple(zip(_PERPS, _KEYS, strict=True)),
        long_share=0.2,
        trend_skill=0.5,
        stake_usd=(1500, 2800),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        entry_order_type=OrderType.MARKET,
        hold_minutes=(240, 1440),
        gap_minutes=(120, 1500),
        open_symbols=("ETH/USDT:USDT", "SOL/USDT:USDT"),
        trade_prefix="SS",
        signal_type="short_setup",
        entry_tags=("breakdown", "funding_extreme", "lower_high", "rsi_overbought"),
        filters=("trend_filter", "funding_rate", "spread", "volatility", "btc_correlation"),
        skipped_signals=40,
        heartbeat_age=timedelta(seconds=12),
        config=_config(
            "futures",
            _PERPS,
            "15m",
            {"bias": "short", "short_share": 0.8, "rsi_period": 14, "rsi_entry": 68},
            _risk(3000, 400, 15, 3, 2, 1.5, 2.5, 1.5, 0.6),
            pause_on_breach=True,
        ),
    ),
    BotSpec(
        bot_id="demo_momentum",
        draw_name="momentum_001",
        name="Momentum",
        strategy_type="trend_following",
        mode=BotMode.LIVE,
        initial_capital=Decimal(10000),
        symbols=tuple(zip(_SPOT, _KEYS, strict=True)),
        long_share=1.0,
        trend_skill=0.7,
        stake_usd=(900, 2200),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        entry_order_type=OrderType.LIMIT,
        hold_minutes=(360, 2160),
        gap_minutes=(180, 1800),
        open_symbols=("BTC/USDT",),
        trade_prefix="MOM",
        signal_type="ema_cross",
        entry_tags=("ema_cross", "breakout", "pullback"),
        filters=("volume", "trend_strength", "spread", "session"),
        skipped_signals=50,
        heartbeat_age=timedelta(seconds=38),
        config=_config(
            "spot",
            _SPOT,
            "1h",
            _MOMENTUM_STRATEGY,
            _risk(2500, 150, 12, 1, 1, 1.4, 2.8, 1.4, 0.6),
            pause_on_breach=False,
        ),
        config_v2=_config(
            "spot",
            _SPOT,
            "1h",
            {**_MOMENTUM_STRATEGY, "min_adx": 25},
            _risk(2500, 150, 12, 1, 1, 1.4, 2.8, 1.4, 0.8, max_open=4),
            pause_on_breach=True,
        ),
        config_v2_reason="Wider trailing stop after whipsaw exits; require ADX >= 25; "
        "pause on a limit breach.",
    ),
    BotSpec(
        bot_id="demo_lxalgo",
        draw_name="lxalgo_001",
        name="LXAlgo",
        strategy_type="mean_reversion",
        mode=BotMode.PAPER,
        initial_capital=Decimal(5000),
        symbols=tuple(zip(_PERPS, _KEYS, strict=True)),
        long_share=0.5,
        trend_skill=0.0,
        stake_usd=(600, 1200),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        entry_order_type=OrderType.MARKET,
        hold_minutes=(90, 720),
        gap_minutes=(240, 2400),
        open_symbols=("SOL/USDT:USDT",),
        trade_prefix="LX",
        signal_type="band_reversion",
        entry_tags=("bb_lower", "bb_upper", "vwap_revert", "zscore"),
        filters=("regime", "spread", "liquidity", "news_window"),
        skipped_signals=30,
        heartbeat_age=timedelta(minutes=17),  # stale: the admin marks it
        config=_config(
            "futures",
            _PERPS,
            "5m",
            {"band_period": 20, "band_stdev": 2.2, "zscore_entry": 2.0},
            _risk(1500, 100, 10, 5, 3, 1.0, 1.2, 1.0, 0.4),
            pause_on_breach=False,
        ),
    ),
)
DEMO_BOT_IDS = tuple(spec.bot_id for spec in SPECS)
# The ids the demo bots had before: a database seeded then holds the demo under them.
OLD_DEMO_BOT_IDS = tuple(spec.draw_name for spec in SPECS)


def spec_for(bot_id: str) -> BotSpec:
    return next(spec for spec in SPECS if spec.bot_id == bot_id)
