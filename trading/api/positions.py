"""POST positions/: one position or a batch of up to 5,000, keyed by (bot, symbol, exchange,
side) of the position that is not closed (at most one per key: a partial unique index).

An open or partially closed item updates that position, or opens one when there is none.
A closed item closes it: status closed, closed_at as sent (or the time it arrived). A closed item
matching no open position is a repeat of the closed one opened at the same opened_at, or else a
position opened and closed between two reports, stored closed.
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, bot_rows
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, pct, quantity, usd
from trading.api.trades import (
    IDEMPOTENCY_PARAMETER,
    UpsertCountsOutputSerializer,
    value_overflow,
)
from trading.models import PositionStatus, TradeSide
from trading.services.ingest import position_upsert_many

MAX_POSITIONS = 5_000


def _position_rules(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    errors: list[tuple[str | None, str]] = []
    if row["quantity"] > row["initial_quantity"]:
        errors.append(("quantity", "must not exceed initial_quantity"))
    if row["closed_at"] is not None:
        if row["status"] != PositionStatus.CLOSED:
            errors.append(("closed_at", "must be null unless status is closed"))
        elif row["closed_at"] < row["opened_at"]:
            errors.append(("closed_at", "must not be before opened_at"))
    return errors or value_overflow(row, ("avg_entry_price", "current_price"), "position")


def _price(**kw: Any) -> F:
    return quantity(gt=Decimal(0), required=False, null=True, **kw)


POSITION_SHAPE = Shape(
    name="Position",
    key_field="symbol",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT; derivatives keep :SETTLE."),
        "exchange": ident(50),
        "side": choice(TradeSide.values),
        "status": choice(PositionStatus.values, default=PositionStatus.OPEN.value),
        "quantity": quantity(ge=Decimal(0), help="The quantity still open."),
        "initial_quantity": quantity(gt=Decimal(0)),
        "avg_entry_price": quantity(gt=Decimal(0)),
        "current_price": _price(),
        "unrealized_pnl_usd": usd(default=Decimal(0)),
        "realized_pnl_usd": usd(default=Decimal(0)),
        "stop_loss": _price(),
        "take_profit": _price(),
        "trailing_stop_pct": pct(gt=Decimal(0), required=False, null=True),
        "trailing_stop_price": _price(),
        "highest_price": _price(),
        "lowest_price": _price(),
        "leverage": pct(gt=Decimal(0), default=Decimal(1)),
        "opened_at": moment(),
        "closed_at": moment(
            required=False,
            null=True,
            help="Only with status closed; omitted, the close is stamped when it arrives.",
        ),
        "metadata": F("object", required=False, default=dict),
    },
    rules=[_position_rules],
)
PositionInputSerializer = POSITION_SHAPE.serializer()


class PositionWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="positions_upsert",
        summary=(
            "Send one position or a batch (up to 5,000); upserted by (bot, symbol, exchange, "
            "side) of the position not closed"
        ),
        description=__doc__,
        request={"application/json": PositionInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, _ = bot_rows(
                request,
                bot=bot,
                shape=POSITION_SHAPE,
                key=lambda r: (r["symbol"], r["exchange"], r["side"]),
                max_items=MAX_POSITIONS,
            )
            return Response(position_upsert_many(bot=bot, rows=rows).as_json())

        return idempotent(request, write)
