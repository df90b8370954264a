"""predictions/: the prediction cache (issue 18, item 5). Bots write batches of their models'
predictions (up to 10,000) and read them back by (model, symbol, target time), from Redis when
hot; predictions/scores/ is each model version's track record against the candles that came.

A prediction belongs to the bot whose token wrote it: a bot reads only its own; staff read any
bot's by naming it (``bot_id``)."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.api.auth import calling_bot
from trading.api.common import bot_of_request, bot_rows
from trading.api.errors import FieldError, InvalidInput
from trading.api.idempotency import idempotent
from trading.api.permissions import IsBot, IsBotOrStaff
from trading.api.shapes import F, Shape, choice, ident, moment, quantity
from trading.api.trades import IDEMPOTENCY_PARAMETER
from trading.models import Timeframe
from trading.selectors.predictions import prediction_group, prediction_scores
from trading.services.predictions import predictions_write

MAX_PREDICTIONS = 10_000


def _confidence_at_most_1(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    confidence = row.get("confidence")
    if confidence is not None and confidence > 1:
        return [("confidence", "must be at most 1")]
    return []


PREDICTION_SHAPE = Shape(
    name="Prediction",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "model_name": ident(100),
        "model_version": ident(64),
        "symbol": ident(64, help="BASE/QUOTE, e.g. BTC/USDT."),
        "exchange": ident(50),
        "timeframe": choice(Timeframe.values),
        "target_ts": moment(help="Open time of the candle predicted, with a UTC offset."),
        "horizon": F("int", min_value=1, help="Candles ahead the prediction was made."),
        "value": quantity(help="The predicted close."),
        "confidence": F(
            "decimal", max_digits=7, places=6, ge=Decimal(0), required=False, null=True
        ),
        "features_hash": ident(128, required=False, default=""),
    },
    rules=[_confidence_at_most_1],
    key_field="model_name",
)
PredictionInputSerializer = PREDICTION_SHAPE.serializer()


_PREDICTION_OUT = inline_serializer(
    "PredictionOutput",
    {
        "model_name": serializers.CharField(),
        "model_version": serializers.CharField(),
        "symbol": serializers.CharField(),
        "exchange": serializers.CharField(),
        "timeframe": serializers.CharField(),
        "target_ts": serializers.DateTimeField(),
        "horizon": serializers.IntegerField(),
        "value": serializers.CharField(help_text="Decimal as text."),
        "confidence": serializers.CharField(allow_null=True),
        "features_hash": serializers.CharField(),
    },
)
PREDICTION_GROUP_OUT = inline_serializer(
    "PredictionGroupOutput", {"results": serializers.ListField(child=_PREDICTION_OUT)}
)
PREDICTION_WRITE_OUT = inline_serializer(
    "PredictionWriteOutput",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
    },
)
_SCORE_OUT = inline_serializer(
    "PredictionScoreOutput",
    {
        "model_name": serializers.CharField(),
        "model_version": serializers.CharField(),
        "scored": serializers.IntegerField(),
        "judged": serializers.IntegerField(help_text="Scored with a base candle: a direction."),
        "hits": serializers.IntegerField(),
        "hit_rate": serializers.CharField(allow_null=True, help_text="hits / judged."),
        "mean_abs_error": serializers.CharField(help_text="Mean of |value - actual close|."),
    },
)
PREDICTION_SCORES_OUT = inline_serializer(
    "PredictionScoresOutput", {"results": serializers.ListField(child=_SCORE_OUT)}
)


def _natural_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["model_name"],
        row["model_version"],
        row["symbol"],
        row["exchange"],
        row["timeframe"],
        row["target_ts"],
        row["horizon"],
    )


def _query(request: Request, name: str, errors: list[FieldError], *, required: bool) -> Any:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    try:
        return PREDICTION_SHAPE.clean_path(
            {"model": "model_name", "target": "target_ts"}.get(name, name), value
        )
    except InvalidInput as exc:
        errors.extend(FieldError(name, e.reason) for e in exc.errors)
        return None


def _reader_bot_id(request: Request, errors: list[FieldError]) -> str | None:
    """The bot whose rows are read: the caller's own, or (staff) the one named."""
    bot = calling_bot(request)
    named = _query(request, "bot_id", errors, required=bot is None)
    if bot is not None:
        if named is not None and named != bot.bot_id:
            errors.append(FieldError("bot_id", "a bot reads only its own predictions"))
        return bot.bot_id
    return named


class PredictionCollectionView(APIView):
    """POST: a bot's batch; GET: one group by (model, symbol, target)."""

    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else [IsBotOrStaff()]

    @extend_schema(
        operation_id="predictions_write",
        summary="Send predictions (one or a JSON array of up to 10,000), upserted by natural key",
        description=(
            "Natural key: (bot, model_name, model_version, symbol, exchange, timeframe, "
            "target_ts, horizon). A repeat changes nothing; another value, confidence or "
            "features_hash for a stored key replaces it and clears its score. A batch with any "
            "bad item writes nothing."
        ),
        request={"application/json": PredictionInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: PREDICTION_WRITE_OUT},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            rows, _ = bot_rows(
                request,
                bot=bot,
                shape=PREDICTION_SHAPE,
                key=_natural_key,
                max_items=MAX_PREDICTIONS,
            )
            result = predictions_write(bot=bot, rows=rows)
            return Response(
                {
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                }
            )

        return idempotent(request, write)

    @extend_schema(
        operation_id="predictions_read",
        summary="The predictions of one model for one symbol's candle (Redis when hot)",
        parameters=[
            OpenApiParameter("model", str, OpenApiParameter.QUERY, True),
            OpenApiParameter("symbol", str, OpenApiParameter.QUERY, True),
            OpenApiParameter("target", datetime, OpenApiParameter.QUERY, True),
            OpenApiParameter("bot_id", str, OpenApiParameter.QUERY, False, "Staff: required."),
        ],
        responses={200: PREDICTION_GROUP_OUT},
    )
    def get(self, request: Request) -> Response:
        errors: list[FieldError] = []
        bot_id = _reader_bot_id(request, errors)
        model = _query(request, "model", errors, required=True)
        symbol = _query(request, "symbol", errors, required=True)
        target = _query(request, "target", errors, required=True)
        if errors or bot_id is None:
            raise InvalidInput(errors)
        items, hot = prediction_group(
            bot_id=bot_id, model_name=model, symbol=symbol, target_ts=target
        )
        return Response({"results": items}, headers={"X-Cache": "hit" if hot else "miss"})


class PredictionScoreView(APIView):
    permission_classes = [IsBotOrStaff]

    @extend_schema(
        operation_id="predictions_scores",
        summary="Each model version's track record: predictions scored, hits, error",
        parameters=[
            OpenApiParameter("model", str, OpenApiParameter.QUERY, False),
            OpenApiParameter("bot_id", str, OpenApiParameter.QUERY, False, "Staff only."),
        ],
        responses={200: PREDICTION_SCORES_OUT},
    )
    def get(self, request: Request) -> Response:
        errors: list[FieldError] = []
        bot = calling_bot(request)
        bot_id = (
            _reader_bot_id(request, errors)
            if bot is not None
            else _query(request, "bot_id", errors, required=False)
        )
        model = _query(request, "model", errors, required=False)
        if errors:
            raise InvalidInput(errors)
        return Response({"results": prediction_scores(bot_id=bot_id, model_name=model)})
