"""Log lines: one JSON object per line in production, plain text in development.

One configuration (``logging_config``) serves Django (settings.LOGGING), gunicorn's error and
access logs (``logconfig_dict`` in gunicorn.conf.py) and Celery's worker and beat (which use
Django's LOGGING instead of their own handlers: see atb_site/celery.py), so every process of a
deploy writes the same lines. No third-party formatter: the standard library's ``json`` does.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("json", "plain")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Request headers that carry a request id: our own callers' first, then the platform's.
_REQUEST_ID_HEADERS = ("x-request-id", "x-railway-request-id")


def log_format(*, debug: bool, requested: str = "") -> str:
    """``requested`` (LOG_FORMAT) when set, else JSON in production and plain text in debug."""
    value = requested.strip().lower()
    if not value:
        return "plain" if debug else "json"
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {requested!r}")
    return value


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """A ``dictConfig`` dictionary: every logger writes through the root's one handler, in ``fmt``
    ("json" or "plain"), at ``level`` and above. On stderr, so that a management command's own
    output (a token, a JSON report) stays alone on stdout."""
    level = level.upper()
    through_root = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "atb_site.logs.JsonFormatter"},
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's and gunicorn's own handlers would print a second, differently formatted
            # line; send theirs through the root instead.
            "django": {**through_root, "level": level},
            "django.server": through_root,
            "gunicorn.error": through_root,
            "gunicorn.access": through_root,
        },
    }


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: apply ``config``, and log Python warnings (``py.warnings``)
    instead of printing them, so that they come out as lines like the rest."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``ts`` (UTC, ISO-8601), ``level``, ``logger``,
    ``message``, ``exception`` (the traceback, when there is one), and the record's extra fields:
    ``extra={...}`` values, the request's method, path and id for Django's request logs and the
    access log, ``status``, and the Celery task's id and name inside a task."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_") or key in entry:
                continue
            if key == "request":
                entry.update(_request_fields(value))
            elif key == "status_code":
                entry["status"] = value
            else:
                entry[key] = value
        entry.update(_task_fields())
        return json.dumps(entry, default=str, ensure_ascii=False)


def _request_fields(request: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("method", "path"):
        value = getattr(request, name, None)
        if isinstance(value, str):
            fields[name] = value
    headers = getattr(request, "headers", None)
    if isinstance(headers, Mapping):
        for header in _REQUEST_ID_HEADERS:
            if headers.get(header):
                fields["request_id"] = headers[header]
                break
    return fields


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """gunicorn's access-log atoms (the record's args) as fields."""
    fields: dict[str, Any] = {
        "remote_addr": atoms.get("h"),
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "query": atoms.get("q") or "",
        "status": _int_or_none(atoms.get("s")),
        "bytes": _int_or_none(atoms.get("B")),
        "duration_ms": round(int(atoms.get("D") or 0) / 1000, 3),
        "user_agent": atoms.get("a"),
    }
    for header in _REQUEST_ID_HEADERS:
        value = atoms.get(f"{{{header}}}i")
        if value and value != "-":
            fields["request_id"] = value
            break
    return fields


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _task_fields() -> dict[str, Any]:
    from celery import current_task  # here: only worker processes run tasks

    request = getattr(current_task, "request", None) if current_task else None
    task_id = getattr(request, "id", None)
    return {"task_id": task_id, "task_name": current_task.name} if task_id else {}
