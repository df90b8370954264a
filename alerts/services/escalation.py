"""Escalation of critical events nobody acknowledged, and acknowledgements."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from alerts.models import Acknowledgement, Source
from audit.models import ChangeAction, RiskEvent, SystemEvent
from audit.services import change_record, model_values

# One escalation per (event, escalation channel): the outbox's unique key. Events resolved,
# acknowledged, or older than a day past their deadline are left alone.
ESCALATE_SQL = """
INSERT INTO alerts.alerts (created_at, kind, source, source_id, rule_id, channel_id, bot_id,
                           event_type, severity, message, payload, status, due_at, first_due_at,
                           attempts, last_error)
SELECT t.at, 'escalation', a.source, a.source_id, a.rule_id,
       r.escalation_channel_id, a.bot_id, a.event_type, a.severity,
       format('ESCALATED, not acknowledged in %s min: %s', r.escalate_after_minutes, a.message),
       a.payload, 'pending', t.at, t.at, 0, ''
FROM (SELECT clock_timestamp() AS at) t, alerts.alerts a
JOIN alerts.rules r ON r.id = a.rule_id
JOIN alerts.channels c ON c.id = r.escalation_channel_id AND c.is_active
WHERE a.kind = 'event' AND a.severity = 'critical'
  AND a.created_at <= now() - make_interval(mins => r.escalate_after_minutes)
  AND a.created_at > now() - make_interval(mins => r.escalate_after_minutes) - interval '1 day'
  AND NOT EXISTS (SELECT 1 FROM alerts.acknowledgements k
                  WHERE k.source = a.source AND k.source_id = a.source_id)
  AND NOT EXISTS (SELECT 1 FROM audit.risk_events e
                  WHERE a.source = 'risk_event' AND e.id = a.source_id AND e.resolved)
ON CONFLICT DO NOTHING
"""

ACK_SOURCES = {Source.RISK_EVENT: RiskEvent, Source.SYSTEM_EVENT: SystemEvent}


def escalations_create() -> int:
    """Write the escalation alerts now due; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(ESCALATE_SQL)
        return cursor.rowcount


@transaction.atomic
def event_acknowledge(*, source: str, source_id: int, user: User, note: str) -> Acknowledgement:
    """``user`` saw the event: no escalation from now on. Recorded in the change log (who, when,
    the note). Acknowledging twice, or an event that does not exist, is refused."""
    model = ACK_SOURCES.get(Source(source)) if source in Source.values else None
    if model is None:
        raise ValidationError({"source": f"One of {', '.join(sorted(ACK_SOURCES))}."})
    if not model._default_manager.filter(pk=source_id).exists():
        raise ValidationError({"id": f"No {source} with id {source_id}."})
    ack = Acknowledgement(
        source=source, source_id=source_id, user=user, ts=timezone.now(), note=note.strip()
    )
    try:
        with transaction.atomic():
            ack.save()
    except IntegrityError:
        earlier = Acknowledgement.objects.get(source=source, source_id=source_id)
        raise ValidationError(
            {"id": f"{source} {source_id} was already acknowledged at {earlier.ts.isoformat()}."}
        ) from None
    change_record(
        entity=ack,
        action=ChangeAction.CREATE,
        new_values=model_values(ack, ["source", "source_id", "user", "ts", "note"]),
        user=user,
        note=ack.note,
    )
    return ack
