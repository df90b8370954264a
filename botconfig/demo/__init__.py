"""The demo data set: three bots with a month of history, so a new install shows a living system.

``demo_seed`` writes it in one transaction, and writes nothing when a demo bot already exists.
All of it follows from a fixed seed and one minute-by-minute price path per market: trades are
simulated on the path (market.py, simulate.py), so trades, orders, fills, positions, balances,
signals and the last week of candles agree with one another, and two runs write the same rows,
shifted to their own ``now``. Money is Decimal throughout: a random draw becomes a Decimal before
it enters any arithmetic, and every value is quantized to its column's scale.
"""

from botconfig.demo.seed import DemoReport, demo_seed
from botconfig.demo.specs import DEMO_BOT_IDS

__all__ = ["DEMO_BOT_IDS", "DemoReport", "demo_seed"]
