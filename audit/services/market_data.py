"""The upkeep of trading.market_data's monthly partitions (trading/services/partitions.py), as
the hourly maintenance task runs it: partitions made ahead, closed months clustered, and months
past ``MARKET_DATA_RETENTION_DAYS`` dropped, each drop said by a system event
(component "market_data", event_type "market_data_months_dropped").
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import OperationalError, connection, transaction

from audit.models import Severity
from audit.services.records import system_event_record
from trading.services.partitions import (
    DroppedMonth,
    market_data_partitions_ahead,
    market_data_partitions_cluster,
    market_data_partitions_drop,
    market_data_partitions_expired,
)

logger = logging.getLogger(__name__)

# How long the drop waits for the table's readers and writers to let go of it: a waiting ACCESS
# EXCLUSIVE request queues every later reader and writer behind it, so it must not wait long.
DROP_LOCK_TIMEOUT = "2s"


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    clustered: list[str] = field(default_factory=list)
    dropped: list[DroppedMonth] = field(default_factory=list)
    drop_postponed: bool = False


def market_data_retention(*, now: datetime, days: int) -> tuple[list[DroppedMonth], bool]:
    """Drop the months that ended more than ``days`` days before ``now``, with their system
    event, in a savepoint: (what was dropped, False), or ([], True) when the table stayed busy
    for DROP_LOCK_TIMEOUT (the next run tries again)."""
    expired = market_data_partitions_expired(now=now, days=days)
    if not expired:
        return [], False
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            dropped = market_data_partitions_drop(partitions=expired)
            rows = sum(d.rows for d in dropped)
            months = ", ".join(d.partition.removeprefix("market_data_p") for d in dropped)
            system_event_record(
                component="market_data",
                event_type="market_data_months_dropped",
                severity=Severity.INFO,
                message=f"Retention ({days} days) dropped {len(dropped)} month(s) of candles "
                f"({months}): {rows} candle(s)",
                details={"retention_days": days, "months": [d.as_json() for d in dropped]},
            )
    except OperationalError as exc:
        logger.warning("market data retention postponed: the table stayed busy (%s)", exc)
        return [], True
    return dropped, False


def market_data_maintain(*, now: datetime) -> MaintenanceReport:
    """Partitions ahead, closed months clustered, then retention (last: its drop holds the
    table's ACCESS EXCLUSIVE lock until the caller commits)."""
    report = MaintenanceReport()
    report.created = market_data_partitions_ahead(now=now)
    report.clustered = market_data_partitions_cluster(now=now)
    days = settings.MARKET_DATA_RETENTION_DAYS
    if days is not None:
        report.dropped, report.drop_postponed = market_data_retention(now=now, days=days)
    return report
