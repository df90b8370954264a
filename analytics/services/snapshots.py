"""Portfolio snapshots: one analytics.portfolio_snapshots row per 5-minute bucket."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from analytics.models import PortfolioSnapshot
from analytics.selectors import portfolio_summary

SNAPSHOT_BUCKET = timedelta(minutes=5)

SNAPSHOT_MONEY_FIELDS = (
    "total_equity_usd",
    "total_balance_usd",
    "unrealized_pnl_usd",
    "realized_pnl_today_usd",
    "gross_exposure_usd",
    "net_exposure_usd",
    "long_exposure_usd",
    "short_exposure_usd",
)
PER_BOT_FIELDS = ("equity_usd", "equity_source", "exposure_usd", "pnl_today_usd", "open_positions")


def snapshot_bucket(at: datetime) -> datetime:
    """The start of the 5-minute bucket holding ``at`` (UTC)."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _snapshot_values(summary: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {name: _money(summary[name]) for name in SNAPSHOT_MONEY_FIELDS}
    values["var_95_usd"] = _money(summary.get("var_95_usd"))
    values["var_99_usd"] = _money(summary.get("var_99_usd"))
    values["open_positions"] = int(summary["open_positions"])
    values["active_bots"] = int(summary["active_bots"])
    values["per_bot"] = {
        str(row["bot_id"]): {
            name: str(row[name]) if isinstance(row.get(name), Decimal) else row.get(name)
            for name in PER_BOT_FIELDS
        }
        for row in summary["bots"]
    }
    return values


def portfolio_snapshot_take(*, at: datetime | None = None) -> PortfolioSnapshot:
    """Record the portfolio as of ``at`` (default now) in the row of its 5-minute bucket: the
    first call in a bucket inserts it, later ones update it, so there is one row per bucket."""
    at = at or timezone.now()
    values = _snapshot_values(portfolio_summary(now=at))
    # One INSERT ... ON CONFLICT (ts) DO UPDATE: safe against a concurrent writer of the bucket.
    (snapshot,) = PortfolioSnapshot.objects.bulk_create(
        [PortfolioSnapshot(ts=snapshot_bucket(at), **values)],
        update_conflicts=True,
        unique_fields=["ts"],
        update_fields=list(values),
    )
    return snapshot
