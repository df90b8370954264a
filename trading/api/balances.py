"""POST balances/: one account-balance snapshot or a batch of up to 5,000, upserted by
(bot, ts, snapshot_type)."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, bot_rows, invalid_rows
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, run_ref, usd
from trading.api.trades import IDEMPOTENCY_PARAMETER, UpsertCountsOutputSerializer
from trading.models import SnapshotType
from trading.services.ingest import RowsRefused, balance_upsert_many

MAX_BALANCES = 5_000

BALANCE_SHAPE = Shape(
    name="AccountBalance",
    key_field="ts",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "ts": moment(help="When the snapshot was taken."),
        "snapshot_type": choice(SnapshotType.values, default=SnapshotType.PERIODIC.value),
        "balance_usd": usd(),
        "equity_usd": usd(),
        "margin_used_usd": usd(ge=Decimal(0), default=Decimal(0)),
        "available_margin_usd": usd(required=False, null=True),
        "unrealized_pnl_usd": usd(default=Decimal(0)),
        "metadata": F("object", required=False, default=dict),
        "run_id": run_ref(),
    },
    server_owned=("id",),
)
AccountBalanceInputSerializer = BALANCE_SHAPE.serializer()


class BalanceWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="balances_upsert",
        summary=(
            "Send one balance snapshot or a batch (up to 5,000); upserted by (bot, ts, "
            "snapshot_type)"
        ),
        request={"application/json": AccountBalanceInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, batch = bot_rows(
                request,
                bot=bot,
                shape=BALANCE_SHAPE,
                key=lambda r: (r["ts"], r["snapshot_type"]),
                max_items=MAX_BALANCES,
            )
            try:
                counts = balance_upsert_many(bot=bot, rows=rows)
            except RowsRefused as exc:  # a run_id not of this bot's runs
                raise invalid_rows(exc, batch=batch) from exc
            return Response(counts.as_json())

        return idempotent(request, write)
