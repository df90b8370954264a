"""Celery task outcomes, counted by task name: ``succeeded``, ``failed``, ``retried``,
``revoked``. The signals fire in the worker process that ran the task (revoked: in the worker's
main process), which flushes its counters at the end of each task."""

from typing import Any

from celery import signals

from audit.monitoring import store

OUTCOMES = ("succeeded", "failed", "retried", "revoked")


def _name(sender: Any, request: Any = None) -> str:
    name = getattr(sender, "name", None) or getattr(request, "task", None)
    return str(name or "unknown")


def _succeeded(sender: Any = None, **kwargs: Any) -> None:
    store.celery_observe(task=_name(sender), outcome="succeeded")


def _failed(sender: Any = None, **kwargs: Any) -> None:
    store.celery_observe(task=_name(sender), outcome="failed")


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
