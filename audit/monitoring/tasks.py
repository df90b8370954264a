"""Celery task outcomes, counted by task name: ``succeeded``, ``failed``, ``retried``,
``revoked``. The signals fire in the worker process that ran the task (revoked: in the worker's
main process), which flushes its counters at the end of each task.

A task failing ``TASK_FAILING_AFTER`` times in a row (across workers: a streak counted in Redis,
cleared by a success) writes one system event ``celery`` / ``task_failing`` (error), which the
alerts rules can route; the next streak writes the next."""

import logging
from typing import Any

from celery import signals
from django.conf import settings

from audit.monitoring import store
from trading.redis_breaker import redis_attempt, redis_client, redis_key

log = logging.getLogger(__name__)


def _streak_key(task: str) -> str:
    return redis_key(f"task-failure-streak:{task}")


def _streak_add(task: str) -> int:
    return redis_attempt(
        "task failure streak", lambda: int(redis_client().incr(_streak_key(task))), 0
    )


def _streak_end(task: str) -> None:
    redis_attempt("task failure streak", lambda: redis_client().delete(_streak_key(task)), 0)


def task_failing_record(*, task: str, streak: int, error: str) -> None:
    from audit.models import Severity
    from audit.services import system_event_record

    try:
        system_event_record(
            component="celery",
            event_type="task_failing",
            severity=Severity.ERROR,
            message=f"task {task} failed {streak} times in a row; last: {error}"[:2000],
            details={"task": task, "streak": streak},
        )
    except Exception:  # the database may be why it fails: never break the worker over it
        log.warning("could not record that %s keeps failing", task, exc_info=True)


OUTCOMES = ("succeeded", "failed", "retried", "revoked")


def _name(sender: Any, request: Any = None) -> str:
    name = getattr(sender, "name", None) or getattr(request, "task", None)
    return str(name or "unknown")


def _succeeded(sender: Any = None, **kwargs: Any) -> None:
    task = _name(sender)
    store.celery_observe(task=task, outcome="succeeded")
    _streak_end(task)


def _failed(sender: Any = None, exception: BaseException | None = None, **kwargs: Any) -> None:
    task = _name(sender)
    store.celery_observe(task=task, outcome="failed")
    streak = _streak_add(task)
    if streak == settings.TASK_FAILING_AFTER:
        task_failing_record(task=task, streak=streak, error=repr(exception))


def _retried(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    store.celery_observe(task=_name(sender, request), outcome="retried")


def _revoked(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    store.celery_observe(task=_name(sender, request), outcome="revoked")
    store.flush()


def _task_done(**kwargs: Any) -> None:
    store.flush()


def install() -> None:
    signals.task_success.connect(_succeeded, weak=False, dispatch_uid="atb-mon-succeeded")
    signals.task_failure.connect(_failed, weak=False, dispatch_uid="atb-mon-failed")
    signals.task_retry.connect(_retried, weak=False, dispatch_uid="atb-mon-retried")
    signals.task_revoked.connect(_revoked, weak=False, dispatch_uid="atb-mon-revoked")
    signals.task_postrun.connect(_task_done, weak=False, dispatch_uid="atb-mon-postrun")
