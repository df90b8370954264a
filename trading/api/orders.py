"""POST orders/ (upserted by (bot, client_order_id)) and POST orders/{client_order_id}/fills/
(upserted by (order, fill_id)). Each takes one object or a batch of up to 5,000.

An order's filled_quantity and avg_fill_price are the server's: they follow from the order's
fills, so a bot sends fills, never those two figures.
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.common import bot_of_request, bot_rows, invalid_rows
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, quantity, run_ref, text, usd
from trading.api.trades import IDEMPOTENCY_PARAMETER, UpsertCountsOutputSerializer
from trading.models import OrderSide, OrderStatus, OrderType
from trading.services.ingest import (
    OrderNotFound,
    RowsRefused,
    order_fill_upsert_many,
    order_upsert_many,
)

MAX_ORDERS = 5_000
MAX_FILLS = 5_000


_NEEDS_PRICE = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_NEEDS_STOP_PRICE = (OrderType.STOP, OrderType.STOP_LIMIT)


def _order_rules(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    errors: list[tuple[str | None, str]] = []
    if row["order_type"] in _NEEDS_PRICE and row["price"] is None:
        errors.append(("price", f"is required for a {row['order_type']} order"))
    if row["order_type"] in _NEEDS_STOP_PRICE and row["stop_price"] is None:
        errors.append(("stop_price", f"is required for a {row['order_type']} order"))
    return errors


ORDER_SHAPE = Shape(
    name="Order",
    key_field="client_order_id",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "client_order_id": ident(128, help="The bot's own id for the order; unique per bot."),
        "exchange_order_id": ident(128, required=False, default=""),
        "trade_id": ident(
            128,
            required=False,
            null=True,
            help="The trade_id of this bot's trade the order belongs to (the trade must exist).",
        ),
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT; derivatives keep :SETTLE."),
        "side": choice(OrderSide.values),
        "order_type": choice(OrderType.values),
        "quantity": quantity(gt=Decimal(0)),
        "price": quantity(
            gt=Decimal(0), required=False, null=True, help="Required for limit and stop_limit."
        ),
        "stop_price": quantity(
            gt=Decimal(0), required=False, null=True, help="Required for stop and stop_limit."
        ),
        "fees_usd": usd(default=Decimal(0), help="The bot's figure; fills do not change it."),
        "status": choice(OrderStatus.values, default=OrderStatus.PENDING.value),
        "retry_count": F("int", min_value=0, default=0),
        "last_error": text(0, required=False, default=""),
        "submitted_at": moment(required=False, null=True),
        "filled_at": moment(required=False, null=True),
        "metadata": F("object", required=False, default=dict),
        "run_id": run_ref(),
    },
    rules=[_order_rules],
    server_owned=(
        "id",
        "created_at",
        "updated_at",
        "filled_quantity",
        "avg_fill_price",
    ),
)
OrderInputSerializer = ORDER_SHAPE.serializer()

ORDER_FILL_SHAPE = Shape(
    name="OrderFill",
    key_field="fill_id",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "fill_id": ident(128, help="The exchange's id for the fill; unique per order."),
        "quantity": quantity(gt=Decimal(0)),
        "price": quantity(gt=Decimal(0)),
        "fee": quantity(default=Decimal(0), help="In fee_currency."),
        "fee_currency": ident(16, required=False, default=""),
        "filled_at": moment(),
    },
    server_owned=("id", "order", "order_id"),
)
OrderFillInputSerializer = ORDER_FILL_SHAPE.serializer()


class OrderWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="orders_upsert",
        summary="Send one order or a batch (up to 5,000); upserted by (bot, client_order_id)",
        description=(
            "Each item is the order's whole state. filled_quantity and avg_fill_price are set "
            "by the server from the order's fills (POST orders/{client_order_id}/fills/); an "
            "order may not shrink below what its fills filled."
        ),
        request={"application/json": OrderInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, batch = bot_rows(
                request,
                bot=bot,
                shape=ORDER_SHAPE,
                key=lambda r: r["client_order_id"],
                max_items=MAX_ORDERS,
            )
            try:
                counts = order_upsert_many(bot=bot, rows=rows)
            except RowsRefused as exc:
                raise invalid_rows(exc, batch=batch) from exc
            return Response(counts.as_json())

        return idempotent(request, write)


class FillWriteView(APIView):
    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(
        operation_id="order_fills_upsert",
        summary="Send one fill of an order or a batch (up to 5,000); upserted by (order, fill_id)",
        description=(
            "After the write the order's filled_quantity is the sum of its fills' quantities and "
            "avg_fill_price their quantity-weighted average price (rounded half-even to 10 "
            "places). A fill that would take filled_quantity past the order's quantity is "
            "refused (400, nothing written). 404 when this bot has no such order."
        ),
        request={"application/json": OrderFillInputSerializer},
        parameters=[
            OpenApiParameter(
                "client_order_id",
                str,
                OpenApiParameter.PATH,
                description="The calling bot's client_order_id of the order.",
            ),
            IDEMPOTENCY_PARAMETER,
        ],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request, client_order_id: str) -> Response:
        bot = bot_of_request(request)
        ORDER_SHAPE.clean_path("client_order_id", client_order_id)

        def write() -> Response:
            rows, batch = bot_rows(
                request,
                bot=bot,
                shape=ORDER_FILL_SHAPE,
                key=lambda r: r["fill_id"],
                max_items=MAX_FILLS,
            )
            try:
                counts = order_fill_upsert_many(bot=bot, client_order_id=client_order_id, rows=rows)
            except OrderNotFound as exc:
                raise NotFound(f"{bot.bot_id} has no order {client_order_id!r}.") from exc
            except RowsRefused as exc:
                raise invalid_rows(exc, batch=batch) from exc
            return Response(counts.as_json())

        return idempotent(request, write)
