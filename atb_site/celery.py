"""The Celery app. Tasks live in each app's tasks.py and are found by autodiscovery."""

import os
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task, signals
from django.db import transaction

from atb_site.db.session import set_process_kind

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atb_site.settings.base")

app = Celery("atb_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# When the message was sent (ISO 8601, UTC): how a scheduled task knows the slot beat sent it
# for, even when the message is delivered again later (audit/scheduled.py).
PUBLISHED_AT_HEADER = "published_at"


@app.on_configure.connect
def settings_loaded(**_kwargs: Any) -> None:
    """A worker or beat started without what production needs says so in one line."""
    from atb_site.startup import settings_or_exit

    settings_or_exit("celery")


@signals.setup_logging.connect
def use_django_logging(**_kwargs: Any) -> None:
    """Worker and beat log through Django's LOGGING (one JSON object per line in production)
    rather than Celery's own handlers: with a receiver here, Celery leaves logging alone, hijacking
    no root logger, and ``-l`` gives way to LOG_LEVEL."""
    from django.conf import settings

    from atb_site.logs import configure

    configure(settings.LOGGING)


@signals.worker_init.connect
def worker_timeouts(**_kwargs: Any) -> None:
    """A worker's connections (its pool's children are forks of it) get the worker's
    PostgreSQL timeouts (atb_site/db/session.py)."""
    set_process_kind("worker")


@signals.beat_init.connect
def beat_timeouts(**_kwargs: Any) -> None:
    """Beat's get beat's: the connection its scheduler opened to read the schedule is closed."""
    set_process_kind("beat")


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue ``task`` once the current transaction commits (at once outside a transaction), so
    a worker never reads rows that are not committed yet, nor runs for a transaction that rolled
    back. Every place that queues a task goes through here."""
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))


@signals.before_task_publish.connect
def stamp_published_at(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    """Stamp every message with its publication time, unless the sender set one."""
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, datetime.now(UTC).isoformat())
