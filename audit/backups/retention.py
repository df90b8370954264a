"""Which backups to keep: grandfather-father-son, by default the newest backup of each of the
last 24 hours, 7 days, 4 ISO weeks and 12 months that have one (settings BACKUP_KEEP_HOURLY,
_DAILY, _WEEKLY, _MONTHLY), in UTC.

The rules count periods that have a backup, not calendar periods back from now (as restic and
borg do): when backups stop for a week, the last ones are kept, not aged out one by one. Only
verified backups fill a period. The newest verified backup is always kept, whatever the settings.
A failed attempt (no file) is kept while it is newer than the newest verified backup (it says
something is wrong now); older ones go, their system events stay.
"""

import logging
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

from audit.backups import paths
from audit.backups.pg import PgTarget
from audit.models import Backup, Severity
from audit.services import system_event_record

logger = logging.getLogger(__name__)

PARTIAL_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class RetentionPolicy:
    hourly: int
    daily: int
    weekly: int
    monthly: int

    @classmethod
    def from_settings(cls) -> "RetentionPolicy":
        return cls(
            hourly=settings.BACKUP_KEEP_HOURLY,
            daily=settings.BACKUP_KEEP_DAILY,
            weekly=settings.BACKUP_KEEP_WEEKLY,
            monthly=settings.BACKUP_KEEP_MONTHLY,
        )


@dataclass(frozen=True)
class BackupPoint[K: Hashable]:
    key: K
    at: datetime
    verified: bool


def _periods() -> list[tuple[str, Callable[[datetime], tuple[int, ...]]]]:
    return [
        ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
        ("daily", lambda t: (t.year, t.month, t.day)),
        ("weekly", lambda t: tuple(t.isocalendar()[:2])),
        ("monthly", lambda t: (t.year, t.month)),
    ]


def retention_keep[K: Hashable](
    points: Iterable[BackupPoint[K]], policy: RetentionPolicy
) -> set[K]:
    """The keys of the backups to keep; a pure function of the points and the policy."""
    ordered = sorted(points, key=lambda p: p.at, reverse=True)
    verified = [p for p in ordered if p.verified]
    keep: set[K] = set()
    if verified:
        keep.add(verified[0].key)
    for rule, period_of in _periods():
        wanted: int = getattr(policy, rule)
        seen: set[tuple[int, ...]] = set()
        for point in verified:
            if len(seen) >= wanted:
                break
            period = period_of(point.at.astimezone(UTC))
            if period not in seen:
                seen.add(period)
                keep.add(point.key)
    newest_verified = verified[0].at if verified else None
    keep.update(
        p.key
        for p in ordered
        if not p.verified and (newest_verified is None or p.at > newest_verified)
    )
    return keep


@dataclass(frozen=True)
class PruneResult:
    kept: int
    deleted: int  # records deleted
    files_deleted: int


def backup_prune(
    *, database: str | None = None, policy: RetentionPolicy | None = None
) -> PruneResult:
    """Delete the backups (files and records) of ``database`` (the configured one) that the
    policy does not keep, and partial files left by a dump that died more than a day ago."""
    database = database or PgTarget.from_settings().dbname
    policy = policy or RetentionPolicy.from_settings()
    rows = list(
        Backup.objects.filter(database=database).values_list("id", "started_at", "verified", "path")
    )
    keep = retention_keep((BackupPoint(pk, at, ok) for pk, at, ok, _ in rows), policy)
    doomed = [(pk, path) for pk, _, _, path in rows if pk not in keep]
    files = [p for _, path in doomed if path for p in paths.companions(Path(path))]
    files_deleted = paths.remove_files(files) + _remove_stale_partials(database)
    with transaction.atomic():
        deleted, _ = Backup.objects.filter(id__in=[pk for pk, _ in doomed]).delete()
        if deleted or files_deleted:
            system_event_record(
                component="backups",
                event_type="backups_pruned",
                severity=Severity.INFO,
                message=f"Retention deleted {deleted} backup(s) of {database}, "
                f"{files_deleted} file(s); {len(keep)} kept",
                details={
                    "policy": policy.__dict__,
                    "deleted_ids": sorted(pk for pk, _ in doomed),
                    "files_deleted": files_deleted,
                },
            )
    return PruneResult(kept=len(rows) - deleted, deleted=deleted, files_deleted=files_deleted)


def _remove_stale_partials(database: str) -> int:
    try:
        folder = paths.database_dir(database)
    except paths.BackupError:
        return 0
    cutoff = time.time() - PARTIAL_MAX_AGE.total_seconds()
    stale = [p for p in folder.glob(f"*/*/*/*{paths.PARTIAL_SUFFIX}") if p.stat().st_mtime < cutoff]
    return paths.remove_files(stale)
