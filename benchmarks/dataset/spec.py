"""What a data set is made of: its size, its seed and its end, the markets, the bots' kinds."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Fixed-point scales. Prices and quantities are whole numbers of 1e-4, so price x quantity is a
# whole number of 1e-8 USD: fees, pnl and notionals are exact integers at the scale of the USD
# columns (NUMERIC(20, 8)), and pnl = (exit - entry) x quantity - fees holds to the last digit.
PRICE_EXP = 4
QTY_EXP = 4
USD_EXP = PRICE_EXP + QTY_EXP
PRICE_SCALE = 10**PRICE_EXP
QTY_SCALE = 10**QTY_EXP

EXCHANGES = ("binance", "binance", "binance", "bybit", "okx", "kraken")
CANDLE_EXCHANGE = "binance"
QUOTE = "USDT"
# 50 named markets; the first few start near their real prices, the others at log-uniform draws.
NAMED_BASES = (
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK",
    "POL", "LTC", "TRX", "ATOM", "UNI", "XLM", "ETC", "FIL", "APT", "ARB",
    "OP", "NEAR", "ICP", "HBAR", "VET", "ALGO", "SAND", "MANA", "AAVE", "EOS",
    "THETA", "XTZ", "AXS", "INJ", "EGLD", "FLOW", "KAVA", "RUNE", "GRT", "SNX",
    "CRV", "MKR", "COMP", "ZEC", "DASH", "NEO", "CHZ", "ENJ", "SUI", "SEI",
)  # fmt: skip
# The large scale's 200 markets: the named ones, then numbered ones (MKT051 ...), so that every
# scale's first markets, and their price paths, are the same.
MAX_SYMBOLS = 200
BASES = NAMED_BASES + tuple(f"MKT{i:03d}" for i in range(len(NAMED_BASES) + 1, MAX_SYMBOLS + 1))
KNOWN_PRICES = {"BTC": 64250.0, "ETH": 3180.0, "SOL": 148.5, "BNB": 580.0, "XRP": 0.52}

# (strategy_type, entry tags, timeframe): freqtrade-like strategies and their tags.
STRATEGIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("momentum", ("ema_cross", "macd_signal", "volume_spike"), "5m"),
    ("meanrev", ("rsi_oversold", "bb_lower", "rsi_overbought"), "15m"),
    ("trend", ("ema_cross", "adx_trend", "supertrend"), "1h"),
    ("scalper", ("orderbook_imbalance", "vwap_bounce"), "1m"),
    ("breakout", ("bb_breakout", "range_break", "volume_spike"), "15m"),
    ("grid", ("grid_level",), "5m"),
    ("shortseller", ("rsi_overbought", "ema_cross_down"), "15m"),
    ("swing", ("fib_retrace", "ichimoku_cloud", "macd_signal"), "4h"),
)
WIN_REASONS = ("roi", "roi", "roi", "trailing_stop_loss", "exit_signal")
LOSS_REASONS = ("stop_loss", "stop_loss", "stop_loss", "exit_signal", "trailing_stop_loss")

DATASET_MARK = "benchmark"  # bots.metadata["dataset"] of every generated bot

SCALES: dict[str, dict[str, int]] = {
    "large": {
        "bots": 1_000,
        "trades": 10_000_000,
        "candles": 50_000_000,
        "symbols": 200,
        "days": 365,
    },
    "full": {"bots": 100, "trades": 1_000_000, "candles": 5_000_000, "symbols": 50, "days": 365},
    "small": {"bots": 10, "trades": 5_000, "candles": 20_000, "symbols": 5, "days": 30},
}


@dataclass(frozen=True)
class DatasetSpec:
    bots: int
    trades: int
    candles: int  # one-minute candles in all, ``symbols`` markets alike
    symbols: int
    days: int  # the trades' and balances' history
    seed: int
    until: datetime  # the end of the history (aware, whole minute): "now" for the data set

    def __post_init__(self) -> None:
        if not 1 <= self.symbols <= len(BASES):
            raise ValueError(f"symbols must be 1 to {len(BASES)}")
        if self.bots < 1 or self.trades < self.bots:
            raise ValueError("need at least one bot and one trade per bot")
        if self.candles < self.symbols or self.days < 3:
            raise ValueError("need a candle per market and at least 3 days of history")
        if self.until.tzinfo is None or self.until.second or self.until.microsecond:
            raise ValueError("until must be timezone-aware and on a whole minute")

    @property
    def scale(self) -> str:
        """The name of the scale these sizes are (``SCALES``), or "custom"."""
        sizes = {k: getattr(self, k) for k in ("bots", "trades", "candles", "symbols", "days")}
        return next((name for name, s in SCALES.items() if s == sizes), "custom")

    @property
    def candles_per_symbol(self) -> int:
        return self.candles // self.symbols

    @property
    def history_minutes(self) -> int:
        return self.days * 24 * 60

    @property
    def path_minutes(self) -> int:
        """Minutes of price path: the trades' history or the candles' span, the longer."""
        return max(self.history_minutes, self.candles_per_symbol)

    @property
    def start(self) -> datetime:
        return self.until - timedelta(minutes=self.history_minutes)

    def as_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "bots": self.bots,
            "trades": self.trades,
            "candles": self.symbols * self.candles_per_symbol,
            "symbols": self.symbols,
            "days": self.days,
            "seed": self.seed,
            "until": self.until.isoformat(),
        }
