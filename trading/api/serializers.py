"""Output serializers for the trading reads: JSON field names are SCHEMA.md's column names.

The owning bot is written as ``bot_id`` (its text key); other foreign keys (``trade``,
``position``) as the related row's id. Money, prices and quantities are decimal strings
(DRF's ``COERCE_DECIMAL_TO_STRING``); timestamps ISO-8601 in UTC.
"""

from typing import Any

from django.db import models
from rest_framework import serializers

from trading.models import AccountBalance, Bot, Order, OrderFill, Position, Signal, Trade


class OutputSerializer(serializers.ModelSerializer):
    """Choices are documented by their values alone, as the input shapes document them, so
    that a column's enumeration is one OpenAPI component for the request and the answer."""

    def build_standard_field(
        self, field_name: str, model_field: models.Field
    ) -> tuple[type[serializers.Field], dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if "choices" in kwargs:
            kwargs["choices"] = [value for value, _ in kwargs["choices"]]
        return field_class, kwargs


class BotOutputSerializer(OutputSerializer):
    class Meta:
        model = Bot
        fields = (
            "bot_id",
            "name",
            "strategy_type",
            "exchange",
            "base_currency",
            "status",
            "mode",
            "initial_capital_usd",
            "current_equity_usd",
            "max_position_size_usd",
            "max_daily_loss_usd",
            "max_drawdown_pct",
            "max_leverage",
            "max_open_positions",
            "last_heartbeat_at",
            "created_at",
            "updated_at",
            "metadata",
        )
        read_only_fields = fields


class TradeOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = Trade
        fields = (
            "id",
            "bot_id",
            "trade_id",
            "symbol",
            "exchange",
            "side",
            "quantity",
            "entry_price",
            "exit_price",
            "entry_time",
            "exit_time",
            "fees_usd",
            "pnl_usd",
            "pnl_pct",
            "status",
            "source",
            "leverage",
            "exit_reason",
            "entry_tag",
            "position",
            "strategy_data",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class PositionOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = Position
        fields = (
            "id",
            "bot_id",
            "symbol",
            "exchange",
            "side",
            "status",
            "quantity",
            "initial_quantity",
            "avg_entry_price",
            "current_price",
            "unrealized_pnl_usd",
            "realized_pnl_usd",
            "stop_loss",
            "take_profit",
            "trailing_stop_pct",
            "trailing_stop_price",
            "highest_price",
            "lowest_price",
            "leverage",
            "opened_at",
            "closed_at",
            "updated_at",
            "metadata",
        )
        read_only_fields = fields


class OrderFillOutputSerializer(OutputSerializer):
    class Meta:
        model = OrderFill
        fields = ("id", "fill_id", "quantity", "price", "fee", "fee_currency", "filled_at")
        read_only_fields = fields


class FillListOutputSerializer(OutputSerializer):
    """A fill in the list of every fill (``GET fills/``), with its order's bot, client order id
    and symbol."""

    bot_id = serializers.CharField(read_only=True)
    client_order_id = serializers.CharField(read_only=True)
    symbol = serializers.CharField(read_only=True)

    class Meta:
        model = OrderFill
        fields = (
            "id",
            "bot_id",
            "order",
            "client_order_id",
            "symbol",
            "fill_id",
            "quantity",
            "price",
            "fee",
            "fee_currency",
            "filled_at",
        )
        read_only_fields = fields


_ORDER_FIELDS: tuple[str, ...] = (
    "id",
    "bot_id",
    "client_order_id",
    "exchange_order_id",
    "trade",
    "position",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "stop_price",
    "filled_quantity",
    "avg_fill_price",
    "fees_usd",
    "status",
    "retry_count",
    "last_error",
    "submitted_at",
    "filled_at",
    "created_at",
    "updated_at",
    "metadata",
)


class OrderOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = Order
        fields = _ORDER_FIELDS
        read_only_fields = fields


class OrderDetailOutputSerializer(OrderOutputSerializer):
    """One order with its fills, oldest fill first."""

    fills = OrderFillOutputSerializer(many=True, read_only=True)

    class Meta(OrderOutputSerializer.Meta):
        fields = (*_ORDER_FIELDS, "fills")
        read_only_fields = fields


class SignalOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = Signal
        fields = (
            "id",
            "bot_id",
            "symbol",
            "signal_type",
            "direction",
            "strength",
            "price",
            "generated_at",
            "filters_passed",
            "filters_failed",
            "validated",
            "executed",
            "trade",
            "outcome",
            "outcome_pnl_usd",
            "metadata",
        )
        read_only_fields = fields


class BalanceOutputSerializer(OutputSerializer):
    bot_id = serializers.CharField(read_only=True)

    class Meta:
        model = AccountBalance
        fields = (
            "id",
            "bot_id",
            "ts",
            "balance_usd",
            "equity_usd",
            "margin_used_usd",
            "available_margin_usd",
            "unrealized_pnl_usd",
            "snapshot_type",
            "metadata",
        )
        read_only_fields = fields
