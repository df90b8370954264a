"""POST heartbeat/: a bot says it is alive, and how it is doing."""

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, refuse_foreign_bot_ids
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import Shape, choice, ident, usd
from trading.api.trades import IDEMPOTENCY_PARAMETER
from trading.models import BotStatus
from trading.services.live_state import HEARTBEAT_WRITE_THROUGH_SECONDS, bot_heartbeat


def _heartbeat_rules(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    if row["balance_usd"] is not None and row["equity_usd"] is None:
        return [("equity_usd", "is required with balance_usd (a balance snapshot holds both)")]
    return []


HEARTBEAT_SHAPE = Shape(
    name="Heartbeat",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "status": choice(
            BotStatus.values,
            required=False,
            null=True,
            help="The bot's own status. A paused bot stays paused until staff resume it.",
        ),
        "equity_usd": usd(required=False, null=True, help="Becomes the bot's current equity."),
        "balance_usd": usd(
            required=False,
            null=True,
            help="With equity_usd: also written as a periodic account_balance snapshot.",
        ),
    },
    rules=[_heartbeat_rules],
    server_owned=("last_heartbeat_at",),
)
HeartbeatInputSerializer = HEARTBEAT_SHAPE.serializer()

HeartbeatOutputSerializer = inline_serializer(
    "HeartbeatOutput",
    fields={
        "bot_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=BotStatus.values),
        "last_heartbeat_at": serializers.DateTimeField(),
        "equity_usd": serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True),
        "balance_usd": serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True),
        "notice": serializers.CharField(
            allow_null=True, help_text="Why a requested status was not applied."
        ),
    },
)


class HeartbeatView(APIView):
    permission_classes = [IsBot]

    @extend_schema(
        operation_id="heartbeat",
        summary="Stamp the calling bot's heartbeat (and its status and equity)",
        description=(
            "The bot's live state is kept in Redis at once and written to PostgreSQL (bots."
            "last_heartbeat_at, status, current_equity_usd; a periodic account_balance row when "
            f"balance_usd is sent) at most once every {HEARTBEAT_WRITE_THROUGH_SECONDS} s per "
            "bot, and at once when the status changes. A paused bot stays paused: only staff "
            "resume it, and the answer's `notice` says so."
        ),
        request={"application/json": HeartbeatInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: HeartbeatOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            # An empty body is a plain "I am alive".
            refuse_foreign_bot_ids([request.data], bot)
            row = HEARTBEAT_SHAPE.clean_one(request.data)
            result = bot_heartbeat(
                bot=bot,
                status=row["status"],
                equity_usd=row["equity_usd"],
                balance_usd=row["balance_usd"],
            )
            return Response(result.as_json())

        return idempotent(request, write)
