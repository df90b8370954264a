"""Scheduled runs: each due slot of a scheduled task does its work once, even when a worker
dies mid-run or two beats send it twice.

A task of the beat schedule (analytics/services/schedule.py) runs its work as
``with scheduled_run(self, lock=NAME, every=PERIOD, due=due) as slot:``

- **The due slot** is the start of the period (``every``, aligned to the clock) that beat sent
  the message in: its ``published_at`` header (atb_site.celery stamps every message) floored to
  the period. A redelivered message keeps its header, so it serves the slot it was due for, not
  the current one; a retry carries the slot in the task's ``due`` argument.
- **The lock.** The task's transaction-level advisory lock (trading.db.advisory_lock). When
  another session holds it (a run still going, or a killed worker's backend that has not yet
  noticed its client is gone: a backend waiting on a lock or running a statement notices only
  when it next talks to the client), the run comes back (``task.retry``) after 2, 4, 8 ... at
  most 60 s, for as long as the task's period (at least a minute) from its first try, however
  late that is; then it gives up with a warning, and the next slot's run takes over.
- **The claim.** Under the lock, in the same transaction as the work, a run that beat sent (or
  its retry) claims (task, slot) in audit.scheduled_runs (audit.services.runs). A claim already
  there means that slot's work committed (a second beat's copy of the message, or a retry that
  waited out a run which then succeeded): the run does nothing and ``slot`` is None. A run that
  dies takes its uncommitted claim with it, so its retry claims afresh. A run queued on demand
  (an import queues the views' refresh) claims nothing: it always does its work.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task
from django.utils import timezone

from atb_site.celery import PUBLISHED_AT_HEADER
from audit.services import scheduled_run_claim
from trading.db import advisory_lock

logger = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 2
RETRY_MAX_SECONDS = 60
# Also bounds eager runs (tests, CELERY_TASK_ALWAYS_EAGER), where a retry runs at once.
MAX_LOCK_RETRIES = 100
MIN_WAIT = timedelta(minutes=1)

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BEAT_HEADER = "periodic_task_name"  # django-celery-beat's, on every message it sends


def slot_floor(at: datetime, every: timedelta) -> datetime:
    """The start of the period of length ``every`` (aligned to the clock, UTC) holding ``at``."""
    return at - (at - EPOCH) % every


def _header(request: Any, name: str) -> Any:
    """A header of the message (a worker's request has them as attributes; apply() as a dict)."""
    return request.get(name) or (request.get("headers") or {}).get(name)


def due_slot(request: Any, every: timedelta, due: str | None = None) -> datetime:
    """The slot a run is due for: ``due`` (a retry's), else its message's publication time,
    else now (a direct call), floored to ``every``."""
    if due:
        return slot_floor(datetime.fromisoformat(due), every)
    published = _header(request, PUBLISHED_AT_HEADER)
    at = datetime.fromisoformat(published) if published else timezone.now()
    return slot_floor(at.astimezone(UTC), every)


def sent_by_beat(request: Any, due: str | None) -> bool:
    """Whether the run serves a firing of the schedule: beat's message (django-celery-beat
    names its entry in a header) or its retry (which names its slot). Other runs (queued on
    demand, as an import queues the views' refresh, or called directly) claim no slot."""
    return due is not None or bool(_header(request, BEAT_HEADER))


def _countdown(retry: int) -> int:
    """Seconds before retry number ``retry`` (0, 1, ...): 2, 4, 8 ... at most 60."""
    return int(min(RETRY_FIRST_SECONDS * 2**retry, RETRY_MAX_SECONDS))


def _come_back(task: Task, lock: str, slot: datetime, every: timedelta, scheduled: bool) -> None:
    """The lock is held: retry later (raises celery's Retry), or give up once the retries would
    have waited longer than the task's period (at least MIN_WAIT), counted from the first try."""
    retries = task.request.retries or 0
    countdown = _countdown(retries)
    waited = sum(_countdown(n) for n in range(retries))
    if waited + countdown > max(every, MIN_WAIT).total_seconds() or retries >= MAX_LOCK_RETRIES:
        logger.warning(
            "%s of %s given up: %s stayed held for %d s (%d retries)",
            task.name,
            slot.isoformat(),
            lock,
            waited,
            retries,
        )
        return
    logger.info(
        "%s of %s: another worker holds its lock, %s; again in %d s",
        task.name,
        slot.isoformat(),
        lock,
        countdown,
    )
    raise task.retry(kwargs={"due": slot.isoformat()} if scheduled else None, countdown=countdown)


@contextmanager
def scheduled_run(
    task: Task, *, lock: str, every: timedelta, due: str | None = None
) -> Iterator[datetime | None]:
    """Run the body once for the task's due slot: yields the slot, or None when the slot's work
    is already done (or given up); raises celery's Retry while another session holds ``lock``.
    A run not sent by beat (sent_by_beat) takes the lock and comes back alike, but claims no
    slot: it always does its work."""
    slot = due_slot(task.request, every, due)
    scheduled = sent_by_beat(task.request, due)
    with advisory_lock(lock) as acquired:
        if acquired:
            if not scheduled or scheduled_run_claim(task=task.name, slot=slot):
                yield slot
            else:
                logger.info("%s of %s already done: nothing to do", task.name, slot.isoformat())
                yield None
            return
    _come_back(task, lock, slot, every, scheduled)
    yield None
