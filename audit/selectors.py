"""Every read of the audit schema that the API, admin and tasks share.

``bot`` is the calling bot, or ``None`` for a staff caller: a bot reads only the events about
itself (a system event with no bot is staff's alone); staff read them all. Querysets come back
unordered and unevaluated; their serializers read only the rows' own columns, so a page of any
size is one query.
"""

from django.db.models import QuerySet

from audit.models import RiskEvent, SystemEvent
from trading.models import Bot


def risk_event_list(*, bot: Bot | None) -> QuerySet[RiskEvent]:
    events = RiskEvent.objects.order_by()
    return events if bot is None else events.filter(bot=bot)


def system_event_list(*, bot: Bot | None) -> QuerySet[SystemEvent]:
    events = SystemEvent.objects.order_by()
    return events if bot is None else events.filter(bot=bot)
