"""The stored reports (analytics.services.reports writes them)."""

from django.db.models import QuerySet

from analytics.models import Report


def report_list() -> QuerySet[Report]:
    """Every stored report, newest period first, with its recipient list."""
    return Report.objects.select_related("recipient_list").order_by("-start", "-id")
