"""GET lists and detail pages of the trading tables, and of the bots.

Who sees what: a bot's token reads only its own bot's rows (another bot's row by id is a 404,
``?bot_id=<another bot>`` an empty list, ``bots/`` lists only itself); staff (a session or a
staff token of an ``is_staff`` user) read every bot's rows. Without credentials: 401.

Lists are newest first, paginated by a cursor over an indexed time column with the unique id
as tie-breaker (``trading.api.pagination``), filtered by ``trading.api.filters``. Each list runs
a fixed number of queries whatever the page holds (see tests/api/test_reads.py).
"""

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend  # type: ignore[import-untyped, unused-ignore]
from drf_spectacular.utils import extend_schema
from rest_framework import generics

from trading.api import filters
from trading.api.auth import calling_bot
from trading.api.exports import Exportable, export_response
from trading.api.pagination import KeysetCursorPagination
from trading.api.permissions import IsBotOrStaff
from trading.api.replica import StaffReadsFromReplica
from trading.api.serializers import (
    BalanceOutputSerializer,
    BotOutputSerializer,
    FillListOutputSerializer,
    OrderDetailOutputSerializer,
    OrderOutputSerializer,
    PositionOutputSerializer,
    SignalOutputSerializer,
    TradeOutputSerializer,
)
from trading.selectors.exports import export_columns
from trading.selectors.lists import (
    balance_list,
    bot_list,
    fill_list,
    order_list,
    position_list,
    signal_list,
    trade_list,
)
from trading.selectors.rowjson import json_rows_of

WHO_SEES = (
    "A bot's token sees only its own bot's rows; staff see every bot's. "
    "Newest first; follow `next` for older rows."
)
WHO_SEES_ONE = "A bot's token reads only its own bot's rows (another bot's is a 404); staff any."


class ReadView(StaffReadsFromReplica, generics.GenericAPIView):
    """Reads for a bot's token (its own rows, from the primary) or staff (all rows, from a read
    replica when there is a fresh one)."""

    permission_classes = [IsBotOrStaff]

    def visible(self) -> QuerySet[Any]:
        """The rows the caller may see (a selector given the calling bot, None for staff)."""
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        return self.visible()


class ListView(Exportable, ReadView, generics.ListAPIView):
    """A page of rows, written as JSON text by PostgreSQL (``trading.selectors.rowjson``): the
    same bytes as the output serializer and DRF's renderer give, without a model instance, a
    Decimal or a datetime per value. A serializer with a field that is not a plain column (the
    fills') is served by DRF's own path instead.

    ``?format=csv|parquet``: every row the filters select, streamed (``trading.api.exports``);
    ``export_paths`` maps a field that is not the model's own column to the path it is read by.
    """

    filter_backends = [DjangoFilterBackend]
    pagination_class = KeysetCursorPagination
    ordering: tuple[str, ...] = ()
    export_paths: dict[str, str] = {}

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # Without any of the filters' parameters django-filter's form would leave the rows as
        # they are: skip building it (most reads, a bot polling its newest rows, give none).
        filterset = getattr(self, "filterset_class", None)
        params = self.request.query_params
        if filterset is not None and not any(name in params for name in filterset.base_filters):
            return queryset
        return super().filter_queryset(queryset)

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        fmt = self.export_format(request)
        if fmt is not None:
            meta: Any = getattr(self.get_serializer_class(), "Meta")  # noqa: B009 - typed Any
            model, fields = meta.model, meta.fields
            return export_response(
                self.filter_queryset(self.get_queryset()),
                export_columns(model, fields, self.export_paths),
                ordering=self.ordering,
                fmt=fmt,
                name=model._meta.db_table.rsplit(".", 1)[-1].strip('"'),
            )
        rows = json_rows_of(self.get_serializer_class())
        if rows is None:
            return super().list(request, *args, **kwargs)
        queryset = self.filter_queryset(self.get_queryset())
        paginator = self.paginator
        if not isinstance(paginator, KeysetCursorPagination):
            return super().list(request, *args, **kwargs)
        return paginator.get_json_response(paginator.paginate_json(queryset, request, self, rows))


class DetailView(ReadView, generics.RetrieveAPIView):
    filter_backends = []  # the list's filters never hide a row asked by id


# --- Bots ---------------------------------------------------------------------------------------


@extend_schema(summary="List bots (a bot's token: only itself)", description=WHO_SEES)
class BotListView(ListView):
    serializer_class = BotOutputSerializer
    filterset_class = filters.BotFilterSet
    ordering = ("-created_at", "-bot_id")

    def visible(self) -> QuerySet[Any]:
        return bot_list(bot=calling_bot(self.request))


@extend_schema(summary="One bot", description=WHO_SEES_ONE)
class BotDetailView(DetailView):
    serializer_class = BotOutputSerializer
    lookup_field = "bot_id"

    def visible(self) -> QuerySet[Any]:
        return bot_list(bot=calling_bot(self.request))


# --- Trades -------------------------------------------------------------------------------------


class TradeListView(ListView):
    """GET trades/ (served by TradeCollectionView, which adds the bots' POST)."""

    serializer_class = TradeOutputSerializer
    filterset_class = filters.TradeFilterSet
    ordering = ("-entry_time", "-id")  # trades_bot_entry_idx / trades_entry_idx

    @extend_schema(summary="List trades, newest entry first", description=WHO_SEES)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return trade_list(bot=calling_bot(self.request))


@extend_schema(summary="One trade", description=WHO_SEES_ONE)
class TradeDetailView(DetailView):
    serializer_class = TradeOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return trade_list(bot=calling_bot(self.request))


# --- Orders -------------------------------------------------------------------------------------


class OrderListView(ListView):
    serializer_class = OrderOutputSerializer
    filterset_class = filters.OrderFilterSet
    ordering = ("-created_at", "-id")  # orders_bot_created_idx

    @extend_schema(summary="List orders, newest first", description=WHO_SEES)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return order_list(bot=calling_bot(self.request))


@extend_schema(summary="One order with its fills", description=WHO_SEES_ONE)
class OrderDetailView(DetailView):
    serializer_class = OrderDetailOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return order_list(bot=calling_bot(self.request), with_fills=True)


# --- Fills --------------------------------------------------------------------------------------


@extend_schema(summary="List fills of every order, newest first", description=WHO_SEES)
class FillListView(ListView):
    serializer_class = FillListOutputSerializer
    filterset_class = filters.FillFilterSet
    ordering = ("-filled_at", "-id")
    export_paths = {
        "bot_id": "order__bot_id",
        "client_order_id": "order__client_order_id",
        "symbol": "order__symbol",
    }

    def visible(self) -> QuerySet[Any]:
        return fill_list(bot=calling_bot(self.request))


# --- Positions ----------------------------------------------------------------------------------


class PositionListView(ListView):
    serializer_class = PositionOutputSerializer
    filterset_class = filters.PositionFilterSet
    ordering = ("-opened_at", "-id")

    @extend_schema(summary="List positions, newest opened first", description=WHO_SEES)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return position_list(bot=calling_bot(self.request))


@extend_schema(summary="One position", description=WHO_SEES_ONE)
class PositionDetailView(DetailView):
    serializer_class = PositionOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return position_list(bot=calling_bot(self.request))


# --- Signals ------------------------------------------------------------------------------------


class SignalListView(ListView):
    serializer_class = SignalOutputSerializer
    filterset_class = filters.SignalFilterSet
    ordering = ("-generated_at", "-id")  # signals_bot_generated_idx

    @extend_schema(summary="List signals, newest first", description=WHO_SEES)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return signal_list(bot=calling_bot(self.request))


@extend_schema(summary="One signal", description=WHO_SEES_ONE)
class SignalDetailView(DetailView):
    serializer_class = SignalOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return signal_list(bot=calling_bot(self.request))


# --- Balances -----------------------------------------------------------------------------------


class BalanceListView(ListView):
    serializer_class = BalanceOutputSerializer
    filterset_class = filters.BalanceFilterSet
    ordering = ("-ts", "-id")  # account_balance_bot_ts_idx

    @extend_schema(summary="List balance snapshots, newest first", description=WHO_SEES)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get(request, *args, **kwargs)

    def visible(self) -> QuerySet[Any]:
        return balance_list(bot=calling_bot(self.request))


@extend_schema(summary="One balance snapshot", description=WHO_SEES_ONE)
class BalanceDetailView(DetailView):
    serializer_class = BalanceOutputSerializer

    def visible(self) -> QuerySet[Any]:
        return balance_list(bot=calling_bot(self.request))
