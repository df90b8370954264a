"""A bot's all-time summary from its checkpoint (analytics.BotSummaryCheckpoint) and the trades
that exited since the checkpoint's cut, by the database function of analytics/summary_sql.py:
one statement that answers the same row, column for column and digit for digit, as the summary
statement of analytics.selectors.bots over all the trades, plus whether the checkpoint was
usable (read from the same snapshot as the trades; when it was not, the figures mean nothing).
The checkpoint is built by analytics.services.summaries.
"""

from analytics.selectors.common import TradeScope
from analytics.summary_sql import CHECKPOINT_SUMMARY_FUNCTION

_SQL = f"SELECT * FROM {CHECKPOINT_SUMMARY_FUNCTION}(%(bot_id)s, %(initial)s::numeric)"  # noqa: S608

# Columns of the function's row that are not the summary statement's.
CHECKPOINT_COLUMNS = ("checkpoint_usable", "later_trades", "checkpoint_cut")


def checkpoint_serves(scope: TradeScope) -> bool:
    """Whether a checkpoint holds ``scope``'s summary: all time, without backtests (the
    function's trade filter is TradeScope's for that scope)."""
    return (
        scope.since is None
        and scope.until is None
        and not scope.include_backtest
        and not scope.sliced
    )


def checkpoint_summary_sql(scope: TradeScope) -> str:
    """The statement for ``scope``, which a checkpoint must serve."""
    if not checkpoint_serves(scope):
        raise ValueError("a summary checkpoint holds the all-time summary without backtests")
    return _SQL
