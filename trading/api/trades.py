"""POST trades/: one trade or a batch of up to 5,000, upserted by (bot, trade_id).

One trade without an Idempotency-Key from a bot token this process knows goes first through
trading.api.trades_single, before DRF (one round trip to PostgreSQL). A batch without an
Idempotency-Key goes first from its bytes straight to COPY text
(trading.api.trades_fast: msgspec structs, numbers as sent, the figures computed by the same
Python); a batch that path leaves alone, or PostgreSQL refuses, takes the generic ``Shape``
below, whose errors every bad trade gets.

GET trades/ (the list, for bots and staff) comes from ``TradeListView``."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from trading.api.common import bot_of_request, bot_rows, fast_path_body, invalid_rows
from trading.api.idempotency import idempotent
from trading.api.lists import TradeListView
from trading.api.permissions import IsBot
from trading.api.shapes import F, Shape, choice, ident, moment, pct, quantity, run_ref, text, usd
from trading.api.trades_fast import trades_upsert_fast
from trading.api.trades_single import single_trade_fast
from trading.models import TradeSide, TradeSource, TradeStatus
from trading.services.ingest import RowsRefused, trade_derived_fields, trade_upsert_many
from trading.services.ingest.common import USD_BOUND, NumericBound, value_problem

MAX_TRADES = 5_000


def _trade_rules(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    errors: list[tuple[str | None, str]] = []
    if row["exit_time"] is not None and row["exit_time"] < row["entry_time"]:
        errors.append(("exit_time", "must not be before entry_time"))
    if row["status"] == TradeStatus.CLOSED:
        for name in ("exit_price", "exit_time"):
            if row[name] is None:
                errors.append((name, "is required when status is closed"))
    elif row["status"] == TradeStatus.OPEN and row["exit_time"] is not None:
        errors.append(("exit_time", "must be null while the trade is open"))
    return errors or _overflow(row)


def _overflow(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    """The value's and the derived figures' overflow (the fast path runs these alone)."""
    return value_overflow(row, ("entry_price",), "trade") or _derived_overflow(row)


# The columns of the figures the server computes (trade_derived_fields), as SCHEMA.md sizes them:
# pnl_usd is a USD column (USD_BOUND, the bound every row's value is held to), pnl_pct a pct one.
_PNL_PCT = pct()
_USD_COLUMN = USD_BOUND
_PCT_COLUMN = NumericBound.of(_PNL_PCT.max_digits, _PNL_PCT.places)


def value_overflow(
    row: dict[str, Any], prices: tuple[str, ...], what: str
) -> list[tuple[str | None, str]]:
    """The error on ``quantity`` when quantity x one of ``prices`` would not fit a USD column
    (value_problem: the service refuses it too, for the importers)."""
    problem = value_problem(row, prices, what)
    return [] if problem is None else [("quantity", problem)]


def _derived_overflow(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    """The field to blame when pnl_usd or pnl_pct, as trade_derived_fields will compute them,
    would not fit their columns (the database would refuse the batch with a bare DataError):
    fees_usd when the fees outweigh the price move, else the price that makes the figure.
    Multiplications only, on the hot path: a division is done only near a column's limit."""
    pnl = row["pnl_usd"]
    fees_blamed = False
    if row["status"] == TradeStatus.CLOSED and pnl is None:
        move = row["exit_price"] - row["entry_price"]
        if row["side"] == TradeSide.SHORT:
            move = -move
        gross = move * row["quantity"]
        pnl = gross - row["fees_usd"]
        fees_blamed = abs(row["fees_usd"]) > abs(gross)
        if _USD_COLUMN.overflows(pnl):
            return [
                (
                    "fees_usd" if fees_blamed else "exit_price",
                    "makes pnl_usd ((exit_price - entry_price) x quantity - fees_usd) overflow "
                    f"the {_USD_COLUMN.digits} digits before the point it can hold",
                )
            ]
        pnl = pnl.quantize(_USD_COLUMN.quantum)
    if pnl is None:
        return []
    notional = row["quantity"] * row["entry_price"]
    if abs(pnl) * 100 < _PCT_COLUMN.safe * notional or not _PCT_COLUMN.overflows(
        pnl / notional * 100
    ):
        return []
    return [
        (
            "fees_usd" if fees_blamed else "entry_price",
            "makes pnl_pct (pnl_usd / (quantity x entry_price) x 100) overflow the "
            f"{_PCT_COLUMN.digits} digits before the point it can hold",
        )
    ]


TRADE_SHAPE = Shape(
    name="Trade",
    key_field="trade_id",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "trade_id": ident(128, help="The bot's own id for the trade; unique per bot."),
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT; derivatives keep :SETTLE."),
        "exchange": ident(50),
        "side": choice(TradeSide.values),
        "quantity": quantity(gt=Decimal(0)),
        "entry_price": quantity(gt=Decimal(0)),
        "exit_price": quantity(gt=Decimal(0), required=False, null=True),
        "entry_time": moment(),
        "exit_time": moment(required=False, null=True),
        "fees_usd": usd(default=Decimal(0)),
        "pnl_usd": usd(
            required=False,
            null=True,
            help="Net of fees. Omitted on a closed trade: computed from prices, quantity, fees.",
        ),
        "status": choice(TradeStatus.values, default=TradeStatus.OPEN.value),
        "source": choice(
            TradeSource.values, required=False, null=True, help="Defaults to the bot's mode."
        ),
        "leverage": pct(gt=Decimal(0), default=Decimal(1)),
        "exit_reason": text(255, required=False, default=""),
        "entry_tag": text(255, required=False, default=""),
        "strategy_data": F("object", required=False, default=dict),
        "run_id": run_ref(),
    },
    rules=[_trade_rules],
    server_owned=("id", "created_at", "updated_at", "pnl_pct", "position"),
)
TradeInputSerializer = TRADE_SHAPE.serializer()

UpsertCountsOutputSerializer = inline_serializer(
    "UpsertCountsOutput",
    fields={
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
    },
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Replays the first answer to a repeat of the same body; 409 for another body.",
)


class TradeCollectionView(TradeListView):
    """GET: the list (a bot's own trades, or all for staff); POST: a bot's upsert."""

    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """A bot's single trade by trading.api.trades_single (one round trip to PostgreSQL,
        before DRF's request cycle); everything else, and whatever it leaves, by DRF."""
        if request.method == "POST":
            response = single_trade_fast(request, refused=_overflow)
            if response is not None:
                response["Allow"] = ", ".join(self.allowed_methods)
                return response
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="trades_upsert",
        summary="Send one trade or a batch (up to 5,000); upserted by (bot, trade_id)",
        request={"application/json": TradeInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: UpsertCountsOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)
        raw = fast_path_body(request)

        def write() -> Response:
            if raw is not None:
                counts = trades_upsert_fast(raw, bot=bot, most=MAX_TRADES, refused=_overflow)
                if counts is not None:
                    return Response(counts.as_json())
            rows, batch = bot_rows(
                request,
                bot=bot,
                shape=TRADE_SHAPE,
                key=lambda r: r["trade_id"],
                max_items=MAX_TRADES,
            )
            for row in rows:
                row["source"] = row["source"] or bot.mode
                trade_derived_fields(row)
            try:
                counts = trade_upsert_many(bot=bot, rows=rows)
            except RowsRefused as exc:  # a run_id not of this bot's runs
                raise invalid_rows(exc, batch=batch) from exc
            return Response(counts.as_json())

        return idempotent(request, write)
