"""Every write of the analytics app: snapshots, rollups, view refreshes, summary checkpoints
(risk checks: .risk)."""

from analytics.services.rollups import risk_metrics_backlog_redo, risk_metrics_rollup
from analytics.services.snapshots import (
    portfolio_snapshot_fill,
    portfolio_snapshot_take,
    snapshot_bucket,
)
from analytics.services.summaries import (
    bot_summary_checkpoint_build,
    bot_summary_checkpoints_refresh,
)
from analytics.services.views import views_refresh

__all__ = [
    "bot_summary_checkpoint_build",
    "bot_summary_checkpoints_refresh",
    "portfolio_snapshot_fill",
    "portfolio_snapshot_take",
    "risk_metrics_backlog_redo",
    "risk_metrics_rollup",
    "snapshot_bucket",
    "views_refresh",
]
