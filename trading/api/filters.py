"""Query-string filters of the read endpoints (django-filter FilterSets, NetBox style).

Every list takes ``bot_id`` and a time range: ``since`` (inclusive) and ``until`` (exclusive),
ISO-8601 with a UTC offset (``2026-01-05T12:00:00Z``). Lists with a ``symbol`` or a ``status``
column filter on them too; ``status`` (and the other enumerations) may be repeated
(``?status=open&status=partially_closed``). A bad value is a 400 naming the parameter.

Filters narrow what the caller may see; they never widen it: a bot's token asking for another
bot's ``bot_id`` gets an empty list.
"""

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import django_filters as filters  # type: ignore[import-untyped, unused-ignore]
from django import forms
from django.db.models import TextChoices

from trading.models import (
    AccountBalance,
    Bot,
    BotMode,
    BotStatus,
    Order,
    OrderFill,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Signal,
    SignalDirection,
    SignalOutcome,
    SnapshotType,
    Trade,
    TradeSide,
    TradeSource,
    TradeStatus,
)

_SPACE_FOR_PLUS = re.compile(r"(T[\d:.]+) (\d{2}(?::?\d{2})?)$")


class AwareDateTimeField(forms.DateTimeField):
    """An ISO-8601 date-time that carries its UTC offset; a naive one is refused."""

    default_error_messages = {
        "invalid": "Enter an ISO-8601 date-time, e.g. 2026-01-05T12:00:00Z.",
        "naive": "Give a UTC offset (e.g. 'Z' or '+00:00').",
    }

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            # An unescaped "+" in a query string arrives as a space: read "12:00:00 01:00" as
            # "12:00:00+01:00" rather than refuse what the caller plainly meant.
            text = _SPACE_FOR_PLUS.sub(r"\1+\2", str(value).strip())
            try:
                moment = datetime.fromisoformat(text)
            except ValueError as exc:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc
        if moment.tzinfo is None:
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class AwareDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = AwareDateTimeField


def since_filter(column: str) -> AwareDateTimeFilter:
    return AwareDateTimeFilter(
        field_name=column,
        lookup_expr="gte",
        label=f"Rows with {column} at or after this moment (ISO-8601 with offset).",
    )


def until_filter(column: str) -> AwareDateTimeFilter:
    return AwareDateTimeFilter(
        field_name=column,
        lookup_expr="lt",
        label=f"Rows with {column} before this moment (ISO-8601 with offset).",
    )


def bot_id_filter() -> filters.CharFilter:
    # A plain text match: no query to check the bot exists (an unknown bot has no rows).
    return filters.CharFilter(field_name="bot_id", label="The bot's id, e.g. momentum_001.")


def one_of(column: str, choices: type[TextChoices]) -> filters.MultipleChoiceFilter:
    return filters.MultipleChoiceFilter(
        field_name=column,
        choices=choices.choices,
        label=f"{column}: one of {', '.join(choices.values)}; repeat for several.",
    )


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``); anything else is refused, not ignored."""

    default_error_messages = {"invalid": "Enter true or false."}
    _VALUES: ClassVar[dict[str, bool]] = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            return value
        try:
            return self._VALUES[str(value).strip().lower()]
        except KeyError as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


def flag(column: str) -> StrictBooleanFilter:
    return StrictBooleanFilter(field_name=column, label=f"{column}: true or false.")


def exact(column: str) -> filters.CharFilter:
    return filters.CharFilter(field_name=column, label=f"Exact {column}.")


class TradeFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    symbol = exact("symbol")
    status = one_of("status", TradeStatus)
    side = one_of("side", TradeSide)
    source = one_of("source", TradeSource)
    since = since_filter("entry_time")
    until = until_filter("entry_time")

    class Meta:
        model = Trade
        fields: list[str] = []


class OrderFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    symbol = exact("symbol")
    status = one_of("status", OrderStatus)
    side = one_of("side", OrderSide)
    order_type = one_of("order_type", OrderType)
    since = since_filter("created_at")
    until = until_filter("created_at")

    class Meta:
        model = Order
        fields: list[str] = []


class FillFilterSet(filters.FilterSet):
    bot_id = filters.CharFilter(
        field_name="order__bot_id", label="The bot's id, e.g. momentum_001."
    )
    client_order_id = filters.CharFilter(
        field_name="order__client_order_id", label="Exact client_order_id of the order."
    )
    symbol = filters.CharFilter(field_name="order__symbol", label="Exact symbol of the order.")
    since = since_filter("filled_at")
    until = until_filter("filled_at")

    class Meta:
        model = OrderFill
        fields: list[str] = []


class PositionFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    symbol = exact("symbol")
    status = one_of("status", PositionStatus)
    side = one_of("side", TradeSide)
    since = since_filter("opened_at")
    until = until_filter("opened_at")

    class Meta:
        model = Position
        fields: list[str] = []


class SignalFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    symbol = exact("symbol")
    signal_type = exact("signal_type")
    direction = one_of("direction", SignalDirection)
    outcome = one_of("outcome", SignalOutcome)
    validated = flag("validated")
    executed = flag("executed")
    since = since_filter("generated_at")
    until = until_filter("generated_at")

    class Meta:
        model = Signal
        fields: list[str] = []


class BalanceFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    snapshot_type = one_of("snapshot_type", SnapshotType)
    since = since_filter("ts")
    until = until_filter("ts")

    class Meta:
        model = AccountBalance
        fields: list[str] = []


class BotFilterSet(filters.FilterSet):
    bot_id = bot_id_filter()
    status = one_of("status", BotStatus)
    mode = one_of("mode", BotMode)
    exchange = exact("exchange")
    strategy_type = exact("strategy_type")
    since = since_filter("created_at")
    until = until_filter("created_at")

    class Meta:
        model = Bot
        fields: list[str] = []
