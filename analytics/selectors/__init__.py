"""Every read of the analytics (METRICS.md figures) the API, dashboard and tasks share."""

from analytics.selectors.bots import bot_summary
from analytics.selectors.equity import bot_equity_curve
from analytics.selectors.periods import bot_breakdown, bot_performance
from analytics.selectors.portfolio import (
    portfolio_performance,
    portfolio_snapshot_list,
    portfolio_summary,
    portfolio_var,
)

__all__ = [
    "bot_breakdown",
    "bot_equity_curve",
    "bot_performance",
    "bot_summary",
    "portfolio_performance",
    "portfolio_snapshot_list",
    "portfolio_summary",
    "portfolio_var",
]
