"""POST events/: one system event of the calling bot or a batch of up to 5,000, into the
append-only audit.system_events. Events are never updated: an event identical in every field to
one the bot already stored is a repeat (``unchanged``), so a retried request stores nothing twice.
"""

import json
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Severity
from audit.services import system_event_insert_many
from trading.api.common import bot_of_request, bot_rows
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, text
from trading.api.trades import IDEMPOTENCY_PARAMETER, UpsertCountsOutputSerializer

MAX_EVENTS = 5_000

SYSTEM_EVENT_SHAPE = Shape(
    name="SystemEvent",
    key_field="ts",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "ts": moment(help="When it happened."),
        "component": ident(100, help="The part of the bot that reports, e.g. 'exchange'."),
        "event_type": ident(100),
        "severity": choice(Severity.values, default=Severity.INFO.value),
        "message": text(0),
        "details": F("object", required=False, default=dict),
    },
    server_owned=("id", "bot"),
)
SystemEventInputSerializer = SYSTEM_EVENT_SHAPE.serializer()


def _event_key(row: dict[str, Any]) -> tuple[Any, ...]:
    details = json.dumps(row["details"], sort_keys=True, default=str)
    return (
        row["ts"],
        row["component"],
        row["event_type"],
        row["severity"],
        row["message"],
        details,
    )


class EventWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="events_create",
        summary="Send one system event or a batch (up to 5,000); exact repeats are not stored",
        description=__doc__,
        request={"application/json": SystemEventInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, _ = bot_rows(
                request, bot=bot, shape=SYSTEM_EVENT_SHAPE, key=_event_key, max_items=MAX_EVENTS
            )
            return Response(system_event_insert_many(bot=bot, rows=rows).as_json())

        return idempotent(request, write)
