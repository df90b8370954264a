"""Portfolio snapshots: one analytics.portfolio_snapshots row per 5-minute bucket.

A bucket whose run never happened (its worker was killed, its retries ran out) is filled by the
next run, as far back as SNAPSHOT_FILL_HORIZON after the last snapshot before it. Past positions
and balances are not kept, so a filled bucket holds the figures as the filling run read them,
and says when: ``taken_at`` (later than the bucket, where a bucket taken on time has it within).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from analytics.models import PortfolioSnapshot
from analytics.selectors import portfolio_summary

SNAPSHOT_BUCKET = timedelta(minutes=5)
SNAPSHOT_FILL_HORIZON = timedelta(hours=1)  # 12 buckets

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


def _snapshots_write(buckets: list[datetime], at: datetime) -> list[PortfolioSnapshot]:
    """The portfolio as of ``at`` in the rows of ``buckets``: one INSERT ... ON CONFLICT (ts)
    DO UPDATE, safe against a concurrent writer of a bucket."""
    values = {**_snapshot_values(portfolio_summary(now=at)), "taken_at": at}
    return PortfolioSnapshot.objects.bulk_create(
        [PortfolioSnapshot(ts=bucket, **values) for bucket in buckets],
        update_conflicts=True,
        unique_fields=["ts"],
        update_fields=list(values),
    )


def portfolio_snapshot_take(*, at: datetime | None = None) -> PortfolioSnapshot:
    """Record the portfolio as of ``at`` (default now) in the row of its 5-minute bucket: the
    first call in a bucket inserts it, later ones update it, so there is one row per bucket."""
    at = at or timezone.now()
    (snapshot,) = _snapshots_write([snapshot_bucket(at)], at)
    return snapshot


def snapshot_buckets_to_fill(*, due: datetime) -> list[datetime]:
    """Bucket ``due`` and the buckets before it since the last snapshot that have none, at most
    SNAPSHOT_FILL_HORIZON before it; oldest first. One indexed read (the unique ts)."""
    due = snapshot_bucket(due)
    last = (
        PortfolioSnapshot.objects.filter(ts__lt=due)
        .order_by("-ts")
        .values_list("ts", flat=True)
        .first()
    )
    if last is None:
        return [due]
    first = max(snapshot_bucket(last) + SNAPSHOT_BUCKET, due - SNAPSHOT_FILL_HORIZON)
    count = (due - first) // SNAPSHOT_BUCKET + 1
    return [first + n * SNAPSHOT_BUCKET for n in range(count)]


def portfolio_snapshot_fill(
    *, due: datetime, at: datetime | None = None
) -> list[PortfolioSnapshot]:
    """The snapshot of bucket ``due`` (the one a run was due for, however late it runs) and of
    the empty buckets before it (snapshot_buckets_to_fill), each with the figures read at ``at``
    (default now). Returns the rows written, oldest first; the last is ``due``'s."""
    at = at or timezone.now()
    return _snapshots_write(snapshot_buckets_to_fill(due=due), at)
