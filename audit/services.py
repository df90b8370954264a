"""Every write to the audit schema. Other apps call these inside their own transactions."""

import json
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from audit.models import ChangeAction, ChangeLog, RiskEvent, Severity, SystemEvent
from trading.models import Bot


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
