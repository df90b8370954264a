"""GET risk-events/ and system-events/ (lists and one by id), for staff and the bot concerned.

A bot's token reads the events about itself: its risk events, and the system events that name
it (a system event with no bot is staff's alone). Staff read every event. Another bot's event
by id is a 404. Lists are newest first, by (ts, id), with the same cursor pagination and
filters as the trading lists (``trading.api.lists``).

audit/api/urls.py includes ``READ_URLPATTERNS``.
"""

from typing import Any

import django_filters as filters  # type: ignore[import-untyped, unused-ignore]
from django.db.models import QuerySet
from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from audit.models import RiskAction, RiskEvent, RiskEventType, Severity, SystemEvent
from audit.selectors import risk_event_list, system_event_list
from trading.api.auth import calling_bot
from trading.api.filters import bot_id_filter, exact, flag, one_of, since_filter, until_filter
from trading.api.lists import DetailView, ListView
from trading.api.serializers import OutputSerializer

WHO_SEES = (
    "A bot's token sees only the events about its own bot; staff see every event. "
    "Newest first; follow `next` for older rows."
)
WHO_SEES_ONE = "A bot's token reads only events about its own bot (others are a 404); staff any."

# --- Output -------------------------------------------------------------------------------------


class RiskEventOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = RiskEvent
        fields = (
            "id",
            "ts",
            "bot_id",
            "event_type",
            "severity",
            "limit_value",
            "actual_value",
            "action_taken",
            "resolved",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "details",
        )
        read_only_fields = fields


class SystemEventOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = SystemEvent
        fields = (
            "id",
            "ts",
            "bot_id",
            "component",
            "event_type",
            "severity",
            "message",
            "details",
        )
        read_only_fields = fields


# --- Filters ------------------------------------------------------------------------------------


class RiskEventFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    event_type = one_of("event_type", RiskEventType)
    severity = one_of("severity", Severity)
    action_taken = one_of("action_taken", RiskAction)
    resolved = flag("resolved")
    since = since_filter("ts")
    until = until_filter("ts")

    class Meta:
        model = RiskEvent
        fields: list[str] = []


class SystemEventFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    component = exact("component")
    event_type = exact("event_type")
    severity = one_of("severity", Severity)
    since = since_filter("ts")
    until = until_filter("ts")

    class Meta:
        model = SystemEvent
        fields: list[str] = []


# --- Views --------------------------------------------------------------------------------------


@extend_schema(summary="List risk events, newest first", description=WHO_SEES)
class RiskEventListView(ListView):
    serializer_class = RiskEventOutputSerializer
    filterset_class = RiskEventFilterSet
    ordering = ("-ts", "-id")  # risk_events_bot_ts_idx

    def visible(self) -> QuerySet[Any]:
        return risk_event_list(bot=calling_bot(self.request))


@extend_schema(summary="One risk event", description=WHO_SEES_ONE)
class RiskEventDetailView(DetailView):
    serializer_class = RiskEventOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return risk_event_list(bot=calling_bot(self.request))


@extend_schema(summary="List system events, newest first", description=WHO_SEES)
class SystemEventListView(ListView):
    serializer_class = SystemEventOutputSerializer
    filterset_class = SystemEventFilterSet
    ordering = ("-ts", "-id")  # system_events_ts_idx / system_events_bot_ts_idx

    def visible(self) -> QuerySet[Any]:
        return system_event_list(bot=calling_bot(self.request))


@extend_schema(summary="One system event", description=WHO_SEES_ONE)
class SystemEventDetailView(DetailView):
    serializer_class = SystemEventOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return system_event_list(bot=calling_bot(self.request))


READ_URLPATTERNS: list[URLPattern] = [
    path("risk-events/", RiskEventListView.as_view(), name="risk-events"),
    path("risk-events/<int:pk>/", RiskEventDetailView.as_view(), name="risk-event"),
    path("system-events/", SystemEventListView.as_view(), name="system-events"),
    path("system-events/<int:pk>/", SystemEventDetailView.as_view(), name="system-event"),
]
