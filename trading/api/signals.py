"""POST signals/: one signal or a batch of up to 5,000, upserted by (bot, symbol, signal_type,
generated_at): a signal sent again is unchanged, and its outcome can be reported later.

SCHEMA.md names no natural key for signals and the table has no unique constraint to back one;
the service serialises each bot's signal writes instead (trading.services.ingest).
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, bot_rows, invalid_rows
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, pct, quantity, run_ref, usd
from trading.api.trades import IDEMPOTENCY_PARAMETER, UpsertCountsOutputSerializer
from trading.models import SignalDirection, SignalOutcome
from trading.services.ingest import RowsRefused, signal_upsert_many

MAX_SIGNALS = 5_000

SIGNAL_SHAPE = Shape(
    name="Signal",
    key_field="symbol",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT; derivatives keep :SETTLE."),
        "signal_type": ident(50),
        "generated_at": moment(),
        "direction": choice(SignalDirection.values, default=SignalDirection.NEUTRAL.value),
        "strength": pct(required=False, null=True),
        "price": quantity(gt=Decimal(0), required=False, null=True),
        "filters_passed": F("list", required=False, default=list),
        "filters_failed": F("list", required=False, default=list),
        "validated": F("bool", required=False, default=False),
        "executed": F("bool", required=False, default=False),
        "trade_id": ident(
            128,
            required=False,
            null=True,
            help="The trade_id of this bot's trade the signal led to (the trade must exist).",
        ),
        "outcome": choice(SignalOutcome.values, default=SignalOutcome.PENDING.value),
        "outcome_pnl_usd": usd(required=False, null=True),
        "metadata": F("object", required=False, default=dict),
        "run_id": run_ref(),
    },
    server_owned=("id",),
)
SignalInputSerializer = SIGNAL_SHAPE.serializer()


class SignalWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="signals_upsert",
        summary=(
            "Send one signal or a batch (up to 5,000); upserted by (bot, symbol, signal_type, "
            "generated_at)"
        ),
        request={"application/json": SignalInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, batch = bot_rows(
                request,
                bot=bot,
                shape=SIGNAL_SHAPE,
                key=lambda r: (r["symbol"], r["signal_type"], r["generated_at"]),
                max_items=MAX_SIGNALS,
            )
            try:
                counts = signal_upsert_many(bot=bot, rows=rows)
            except RowsRefused as exc:
                raise invalid_rows(exc, batch=batch) from exc
            return Response(counts.as_json())

        return idempotent(request, write)
