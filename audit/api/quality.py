"""GET data-quality/: the findings of the latest data-quality run (staff only).

Each finding is a system event written by ``audit.services.quality``: ``check`` names the check
(``candle_gap``, ``orphaned_link``, ``executed_signal_without_trade``, ``fill_quantity_mismatch``,
``duplicate_trade``, ``position_mismatch``), ``details`` holds the keys that find the rows.
``checked_at`` is when the latest run ran (null before the first one); a finding first reported
by an earlier run and still present keeps its id and ``ts``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import Severity, SystemEvent
from audit.selectors import data_quality_latest
from trading.api.permissions import IsStaff
from trading.api.replica import StaffReadsFromReplica
from trading.api.serializers import OutputSerializer


class DataQualityFindingOutputSerializer(OutputSerializer):
    check = serializers.CharField(source="event_type", read_only=True)
    severity = serializers.ChoiceField(choices=Severity.values, read_only=True)
    details = serializers.DictField(read_only=True)

    class Meta:
        model = SystemEvent
        fields = ("id", "ts", "check", "severity", "message", "details")
        read_only_fields = fields


class DataQualityOutputSerializer(serializers.Serializer):
    checked_at = serializers.DateTimeField(allow_null=True, read_only=True)
    findings = DataQualityFindingOutputSerializer(many=True, read_only=True)


class DataQualityView(StaffReadsFromReplica):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="data_quality_retrieve",
        summary="The findings of the latest data-quality run (staff only)",
        description=__doc__,
        responses={200: DataQualityOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        report = data_quality_latest()
        return Response(DataQualityOutputSerializer(report).data)
