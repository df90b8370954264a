"""The alert tasks, run by beat (analytics/services/schedule.py) every few seconds: the sweep
that delivers the outbox, and the escalation of critical events nobody acknowledged. Both are
safe to run anywhere and any number of times at once (SKIP LOCKED, ON CONFLICT DO NOTHING)."""

from celery import shared_task

from alerts.services.delivery import alerts_deliver
from alerts.services.escalation import escalations_create

DELIVER = "alerts.deliver"
ESCALATE = "alerts.escalate"


@shared_task(name=DELIVER, acks_late=True)
def deliver(budget_seconds: float = 20.0) -> int:
    return alerts_deliver(budget_seconds=budget_seconds)


@shared_task(name=ESCALATE, acks_late=True)
def escalate() -> int:
    return escalations_create()
