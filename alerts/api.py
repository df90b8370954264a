"""/api/v1/alerts/...: acknowledging an event (staff), as the dashboard's risk-event table does.

POST /api/v1/alerts/acknowledgements  {"source": "risk_event", "id": 12, "note": "on it"}
  -> 201 {"source", "id", "user", "ts", "note"}; 400 naming the field (unknown event, already
  acknowledged, bad source).
GET  /api/v1/alerts/acknowledgements?source=risk_event&ids=1,2,3 -> the acknowledgements of
  those events (at most 200 ids)."""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import Acknowledgement, Source
from alerts.services.escalation import ACK_SOURCES, event_acknowledge
from trading.api.errors import FieldError, InvalidInput
from trading.api.permissions import IsStaff

SOURCES = sorted(str(s) for s in ACK_SOURCES)


class AcknowledgeSerializer(serializers.Serializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the field, not Field.source
        choices=SOURCES, default=Source.RISK_EVENT
    )
    id = serializers.IntegerField(min_value=1)
    note = serializers.CharField(allow_blank=True, default="", max_length=2000)


class AcknowledgementSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]
    id = serializers.IntegerField(source="source_id")
    user = serializers.CharField(source="user.username")
    ts = serializers.DateTimeField()
    note = serializers.CharField()


class AcknowledgementsView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="alerts_acknowledgements_list",
        summary="Acknowledgements of some events (staff only)",
        parameters=[
            OpenApiParameter("source", str, enum=SOURCES),
            OpenApiParameter("ids", str, description="Event ids, comma separated (at most 200)."),
        ],
        responses={200: AcknowledgementSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        source = request.query_params.get("source", Source.RISK_EVENT)
        if source not in SOURCES:
            raise InvalidInput([FieldError("source", f"One of {', '.join(SOURCES)}.")])
        raw = [part for part in request.query_params.get("ids", "").split(",") if part.strip()]
        if len(raw) > 200 or not all(part.strip().isdigit() for part in raw):
            raise InvalidInput([FieldError("ids", "At most 200 ids, comma separated digits.")])
        acks = (
            Acknowledgement.objects.filter(source=source, source_id__in=[int(part) for part in raw])
            .select_related("user")
            .order_by("source_id")
        )
        return Response(AcknowledgementSerializer(acks, many=True).data)

    @extend_schema(
        operation_id="alerts_acknowledgements_create",
        summary="Acknowledge an event: stops its escalation; audited (staff only)",
        request=AcknowledgeSerializer,
        responses={201: AcknowledgementSerializer},
    )
    def post(self, request: Request) -> Response:
        given = AcknowledgeSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data: dict[str, Any] = given.validated_data
        user = request.user
        if not isinstance(user, User):  # IsStaff let only users in
            raise PermissionDenied
        try:
            ack = event_acknowledge(
                source=data["source"], source_id=data["id"], user=user, note=data["note"]
            )
        except ValidationError as exc:
            raise InvalidInput(
                [FieldError(f, " ".join(m)) for f, m in exc.message_dict.items()]
            ) from exc
        return Response(AcknowledgementSerializer(ack).data, status=status.HTTP_201_CREATED)
