"""runs/: a bot opens a run when its engine starts and closes it when it stops; GET lists them
(a bot's token: its own runs only; staff: all)."""

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from trading.api.auth import calling_bot
from trading.api.common import bot_of_request, refuse_foreign_bot_ids
from trading.api.errors import FieldError, InvalidInput
from trading.api.idempotency import idempotent
from trading.api.lists import DetailView, ListView
from trading.api.permissions import IsBot
from trading.api.serializers import OutputSerializer
from trading.api.shapes import F, Shape, choice, ident, moment, text
from trading.api.trades import IDEMPOTENCY_PARAMETER
from trading.models import BotRun, RunMode, RunStatus
from trading.selectors.runs import run_list
from trading.services.runs import RunRefused, bot_run_close, bot_run_open

# What a bot may open (an import's runs are the importers').
OPENED_MODES = (RunMode.LIVE.value, RunMode.DRY_RUN.value, RunMode.BACKTEST.value)

RUN_OPEN_SHAPE = Shape(
    name="RunOpen",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "mode": choice(OPENED_MODES),
        "started_at": moment(
            help="When the engine started: with the bot, the run's natural key (a repeat "
            "returns the stored run)."
        ),
        "config_version": F("int", required=False, null=True, min_value=1),
        "code_version": text(128, required=False, default=""),
        "strategy_name": text(100, required=False, default=""),
        "strategy_params": F("object", required=False, default=dict),
        "host": text(255, required=False, default=""),
    },
    server_owned=("id", "status", "ended_at", "end_reason", "created_at"),
)
RunOpenInputSerializer = RUN_OPEN_SHAPE.serializer()

RUN_CLOSE_SHAPE = Shape(
    name="RunClose",
    fields={
        "bot_id": ident(64, required=False, help="Optional; must be the calling bot's id."),
        "ended_at": moment(required=False, null=True, help="Now by default."),
        "status": choice(
            (RunStatus.CLOSED.value, RunStatus.CRASHED.value), default=RunStatus.CLOSED.value
        ),
        "end_reason": text(255, required=False, default=""),
    },
)
RunCloseInputSerializer = RUN_CLOSE_SHAPE.serializer()


class BotRunOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = BotRun
        fields = (
            "id",
            "bot_id",
            "mode",
            "status",
            "started_at",
            "ended_at",
            "end_reason",
            "config_version",
            "code_version",
            "strategy_name",
            "strategy_params",
            "host",
            "metadata",
            "created_at",
        )
        read_only_fields = fields


def _refused(exc: RunRefused) -> InvalidInput:
    return InvalidInput([FieldError(exc.field, exc.reason)])


class RunCollectionView(ListView):
    """GET: the runs the caller may see, newest first; POST: a bot opens a run."""

    serializer_class = BotRunOutputSerializer
    ordering = ("-started_at", "-id")

    def get_permissions(self) -> Any:
        return [IsBot()] if self.request.method == "POST" else super().get_permissions()

    def visible(self) -> QuerySet[Any]:
        return run_list(bot=calling_bot(self.request))

    @extend_schema(summary="List runs, newest first (a bot's token: its own)")
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="runs_open",
        summary="Open a run (its engine started); 201, or 200 with the stored run for a repeat",
        description=(
            "A run still open is closed first as crashed. While the run is open, every trade, "
            "order, signal and balance the bot writes is linked to it."
        ),
        request={"application/json": RunOpenInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: BotRunOutputSerializer, 201: BotRunOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        bot = bot_of_request(request)

        def write() -> Response:
            refuse_foreign_bot_ids([request.data], bot)
            row = RUN_OPEN_SHAPE.clean_one(request.data)
            row.pop("bot_id", None)
            try:
                run, created = bot_run_open(bot=bot, actor_bot=bot, **row)
            except RunRefused as exc:
                raise _refused(exc) from exc
            return Response(
                BotRunOutputSerializer(run).data,
                status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            )

        return idempotent(request, write)


class RunDetailView(DetailView):
    serializer_class = BotRunOutputSerializer

    @extend_schema(summary="One run (a bot's token: its own)")
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return run_list(bot=calling_bot(self.request))


class RunCloseView(GenericAPIView):
    permission_classes = [IsBot]
    serializer_class = BotRunOutputSerializer

    def get_queryset(self) -> QuerySet[BotRun]:
        return run_list(bot=calling_bot(self.request))

    @extend_schema(
        operation_id="runs_close",
        summary="Close one of the bot's runs (its engine stopped); a repeat returns it as is",
        request={"application/json": RunCloseInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: BotRunOutputSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        bot = bot_of_request(request)
        run = get_object_or_404(run_list(bot=bot), pk=pk)  # another bot's run does not exist

        def write() -> Response:
            refuse_foreign_bot_ids([request.data], bot)
            row = RUN_CLOSE_SHAPE.clean_one(request.data or {})
            try:
                closed, _ = bot_run_close(
                    run=run,
                    ended_at=row["ended_at"],
                    reason=row["end_reason"],
                    status=row["status"],
                    actor_bot=bot,
                )
            except RunRefused as exc:
                raise _refused(exc) from exc
            return Response(BotRunOutputSerializer(closed).data)

        return idempotent(request, write)
