"""The change log, system events and risk-event resolutions: the audit records other apps write
inside their own transactions."""

import json
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from audit.models import ChangeAction, ChangeLog, RiskEvent, Severity, SystemEvent
from trading.models import Bot
from trading.services.ingest import UpsertCounts, jsonb_text


def json_safe(value: Any) -> Any:
    """The value as plain JSON: Decimal as its exact string, datetimes as ISO-8601."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def model_values(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """JSON-safe values of ``fields`` (attribute names; FKs by their ``<name>_id`` column)."""
    values: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        values[name] = getattr(instance, attname)
    return json_safe(values)


def change_record(
    *,
    entity: models.Model,
    action: ChangeAction,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
    user: User | None = None,
    actor_bot: Bot | None = None,
    note: str = "",
) -> ChangeLog:
    """Record who changed ``entity``, how, and its old and new values."""
    return ChangeLog.objects.create(
        ts=timezone.now(),
        user=user if user is not None and user.is_authenticated else None,
        actor_bot=actor_bot,
        entity_type=entity._meta.label_lower,
        entity_id=str(entity.pk),
        action=action,
        old_values=json_safe(old_values or {}),
        new_values=json_safe(new_values or {}),
        note=note,
    )


def system_event_record(
    *,
    component: str,
    event_type: str,
    message: str,
    severity: Severity = Severity.INFO,
    bot: Bot | None = None,
    details: dict[str, Any] | None = None,
) -> SystemEvent:
    return SystemEvent.objects.create(
        ts=timezone.now(),
        bot=bot,
        component=component,
        event_type=event_type,
        severity=severity,
        message=message,
        details=json_safe(details or {}),
    )


@transaction.atomic
def risk_event_resolve(*, event: RiskEvent, user: User, note: str) -> RiskEvent:
    """Mark a risk event resolved by ``user`` with ``note``. Resolving twice is refused."""
    note = note.strip()
    if not note:
        raise ValidationError({"resolution_note": "A note saying how it was resolved is required."})
    locked = RiskEvent.objects.select_for_update().get(pk=event.pk)
    if locked.resolved:
        raise ValidationError(
            {"resolved": f"Risk event {locked.pk} was already resolved at {locked.resolved_at}."}
        )
    fields = ["resolved", "resolved_at", "resolved_by", "resolution_note"]
    old = model_values(locked, fields)
    locked.resolved = True
    locked.resolved_at = timezone.now()
    locked.resolved_by = user
    locked.resolution_note = note
    locked.save(update_fields=fields)
    change_record(
        entity=locked,
        action=ChangeAction.RESOLVE,
        old_values=old,
        new_values=model_values(locked, fields),
        user=user,
        note=note,
    )
    return locked


SYSTEM_EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "timestamptz"),
    ("component", "text"),
    ("event_type", "text"),
    ("severity", "text"),
    ("message", "text"),
    ("details", "jsonb"),
)

# Append-only, so an event is never updated: one identical in every field to a stored event of
# the same bot is a repeat (a retried request) and is not stored again. The (bot, ts) index
# finds the candidates.
SYSTEM_EVENT_INSERT_SQL = f"""
INSERT INTO audit.system_events (bot_id, {", ".join(n for n, _ in SYSTEM_EVENT_COLUMNS)})
SELECT %(bot_id)s, {", ".join(f"u.{n}" for n, _ in SYSTEM_EVENT_COLUMNS)}
FROM unnest({", ".join(f"%({n})s::{t}[]" for n, t in SYSTEM_EVENT_COLUMNS)})
    AS u({", ".join(n for n, _ in SYSTEM_EVENT_COLUMNS)})
WHERE NOT EXISTS (
    SELECT FROM audit.system_events AS e
    WHERE e.bot_id = %(bot_id)s
        AND ({", ".join(f"e.{n}" for n, _ in SYSTEM_EVENT_COLUMNS)})
            = ({", ".join(f"u.{n}" for n, _ in SYSTEM_EVENT_COLUMNS)})
)
RETURNING id
"""  # noqa: S608 - identifiers are the constants above; values are parameters


def system_event_insert_many(*, bot: Bot, rows: list[dict[str, Any]]) -> UpsertCounts:
    """Store a bot's system events in one statement; exact repeats of stored ones are skipped
    (``unchanged``). Rows are cleaned: ts, component, event_type, severity, message, details."""
    if not rows:
        return UpsertCounts(0, 0, 0)
    params: dict[str, Any] = {"bot_id": bot.bot_id}
    for name, kind in SYSTEM_EVENT_COLUMNS:
        params[name] = [jsonb_text(r[name]) if kind == "jsonb" else r[name] for r in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        # No unique constraint can back "identical event": one writer per bot at a time.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"audit.system_events:{bot.bot_id}"],
        )
        cursor.execute(SYSTEM_EVENT_INSERT_SQL, params)
        created = len(cursor.fetchall())
    return UpsertCounts(created=created, updated=0, unchanged=len(rows) - created)


def bot_status_change_record(bot: Bot, old_status: str, new_status: str) -> None:
    """The change record of a status a bot reported itself (heartbeat)."""
    change_record(
        entity=bot,
        action=ChangeAction.PAUSE if new_status == "paused" else ChangeAction.UPDATE,
        old_values={"status": old_status},
        new_values={"status": new_status},
        actor_bot=bot,
        note="reported by the bot's heartbeat",
    )


def bot_run_change_record(
    run: Any, action: str, old: dict[str, Any], new: dict[str, Any], actor_bot: Bot | None
) -> None:
    """The change record of a bot run opened, closed or closed as crashed
    (trading.services.runs)."""
    change_record(
        entity=run,
        action=ChangeAction(action),
        old_values=old,
        new_values=new,
        actor_bot=actor_bot,
        note=new.get("end_reason") or "",
    )
