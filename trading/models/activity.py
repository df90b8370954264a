"""What a bot does: positions, trades, orders and their fills, signals, balances."""

from django.db import models
from django.db.models import F, Q

from trading.db import (
    PctField,
    QuantityField,
    UsdField,
    choices_check,
    schema_table,
)
from trading.models.bots import Bot, run_field
from trading.models.choices import (
    SCHEMA,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionStatus,
    SignalDirection,
    SignalOutcome,
    SnapshotType,
    TradeSide,
    TradeSource,
    TradeStatus,
)


class Position(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="positions")
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    side = models.CharField(max_length=8, choices=TradeSide.choices)
    status = models.CharField(
        max_length=20, choices=PositionStatus.choices, default=PositionStatus.OPEN
    )
    quantity = QuantityField(help_text="Quantity still open.")
    initial_quantity = QuantityField()
    avg_entry_price = QuantityField()
    current_price = QuantityField(null=True, blank=True)
    unrealized_pnl_usd = UsdField(default=0)
    realized_pnl_usd = UsdField(default=0)
    stop_loss = QuantityField(null=True, blank=True)
    take_profit = QuantityField(null=True, blank=True)
    trailing_stop_pct = PctField(null=True, blank=True)
    trailing_stop_price = QuantityField(null=True, blank=True)
    highest_price = QuantityField(null=True, blank=True)
    lowest_price = QuantityField(null=True, blank=True)
    leverage = PctField(default=1)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = schema_table(SCHEMA, "positions")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "symbol", "exchange", "side"],
                condition=~Q(status=PositionStatus.CLOSED),
                name="positions_one_open_per_bot_symbol_side",
            ),
            choices_check("positions", "side", TradeSide),
            choices_check("positions", "status", PositionStatus),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="positions_quantity_gte_0"),
            models.CheckConstraint(
                condition=Q(initial_quantity__gt=0), name="positions_initial_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(quantity__lte=F("initial_quantity")),
                name="positions_quantity_lte_initial",
            ),
            models.CheckConstraint(
                condition=Q(avg_entry_price__gt=0), name="positions_avg_entry_price_positive"
            ),
            models.CheckConstraint(condition=Q(leverage__gt=0), name="positions_leverage_positive"),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=F("opened_at")),
                name="positions_closed_after_opened",
            ),
            models.CheckConstraint(
                condition=~Q(status=PositionStatus.CLOSED) | Q(closed_at__isnull=False),
                name="positions_closed_has_closed_at",
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "status"], name="positions_bot_status_idx"),
            models.Index(fields=["symbol"], name="positions_symbol_idx"),
            # API lists, newest first, per bot and (for staff) across bots.
            models.Index(fields=["bot", "-opened_at"], name="positions_bot_opened_idx"),
            models.Index(fields=["-opened_at"], name="positions_opened_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.side} {self.symbol} ({self.status})"


class Trade(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="trades")
    trade_id = models.CharField(max_length=128, help_text="The bot's own id for the trade.")
    symbol = models.CharField(max_length=64)
    exchange = models.CharField(max_length=50)
    side = models.CharField(max_length=8, choices=TradeSide.choices)
    quantity = QuantityField()
    entry_price = QuantityField()
    exit_price = QuantityField(null=True, blank=True)
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField(null=True, blank=True)
    fees_usd = UsdField(default=0)
    pnl_usd = UsdField(null=True, blank=True, help_text="Net of fees.")
    pnl_pct = PctField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TradeStatus.choices, default=TradeStatus.OPEN)
    source = models.CharField(max_length=16, choices=TradeSource.choices, default=TradeSource.LIVE)
    leverage = PctField(default=1)
    exit_reason = models.CharField(max_length=255, blank=True, default="")
    entry_tag = models.CharField(max_length=255, blank=True, default="")
    position = models.ForeignKey(
        Position, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    strategy_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "trades")
        ordering = ["-entry_time"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "trade_id"], name="trades_bot_trade_id_uniq"),
            choices_check("trades", "side", TradeSide),
            choices_check("trades", "status", TradeStatus),
            choices_check("trades", "source", TradeSource),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trades_quantity_positive"),
            models.CheckConstraint(
                condition=Q(entry_price__gt=0), name="trades_entry_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(exit_price__isnull=True) | Q(exit_price__gt=0),
                name="trades_exit_price_positive",
            ),
            models.CheckConstraint(condition=Q(leverage__gt=0), name="trades_leverage_positive"),
            models.CheckConstraint(
                condition=Q(exit_time__isnull=True) | Q(exit_time__gte=F("entry_time")),
                name="trades_exit_after_entry",
            ),
            models.CheckConstraint(
                condition=~Q(status=TradeStatus.CLOSED)
                | Q(exit_price__isnull=False, exit_time__isnull=False, pnl_usd__isnull=False),
                name="trades_closed_has_exit_and_pnl",
            ),
        ]
        indexes = [
            # Lists, newest first, per bot and across bots.
            models.Index(fields=["bot", "-entry_time"], name="trades_bot_entry_idx"),
            models.Index(fields=["-entry_time"], name="trades_entry_idx"),
            # Metrics read a bot's closed trades in exit order (METRICS.md).
            models.Index(
                fields=["bot", "exit_time"],
                condition=Q(status=TradeStatus.CLOSED),
                name="trades_bot_closed_exit_idx",
            ),
            models.Index(fields=["symbol", "-entry_time"], name="trades_symbol_entry_idx"),
            models.Index(
                fields=["bot", "status"],
                condition=Q(status=TradeStatus.OPEN),
                name="trades_bot_open_idx",
            ),
            # A run's figures (analytics) read its closed trades in exit order, index only, as
            # trades_bot_closed_curve_idx (0004) serves a bot's.
            models.Index(
                fields=["run", "exit_time", "id"],
                include=["pnl_usd", "fees_usd", "quantity", "entry_price", "entry_time", "source"],
                condition=Q(status=TradeStatus.CLOSED, run__isnull=False),
                name="trades_run_closed_curve_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.trade_id}"


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="orders")
    client_order_id = models.CharField(max_length=128)
    exchange_order_id = models.CharField(max_length=128, blank=True, default="")
    trade = models.ForeignKey(
        Trade, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    position = models.ForeignKey(
        Position, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=8, choices=OrderSide.choices)
    order_type = models.CharField(max_length=16, choices=OrderType.choices)
    quantity = QuantityField()
    price = QuantityField(null=True, blank=True)
    stop_price = QuantityField(null=True, blank=True)
    filled_quantity = QuantityField(default=0)
    avg_fill_price = QuantityField(null=True, blank=True)
    fees_usd = UsdField(default=0)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    retry_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "orders")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "client_order_id"], name="orders_bot_client_order_id_uniq"
            ),
            choices_check("orders", "side", OrderSide),
            choices_check("orders", "order_type", OrderType),
            choices_check("orders", "status", OrderStatus),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=F("quantity")),
                name="orders_filled_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0), name="orders_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(stop_price__isnull=True) | Q(stop_price__gt=0),
                name="orders_stop_price_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-created_at"], name="orders_bot_created_idx"),
            models.Index(fields=["-created_at"], name="orders_created_idx"),
            models.Index(fields=["bot", "status"], name="orders_bot_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.client_order_id}"


class OrderFill(models.Model):
    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills", db_index=False)
    fill_id = models.CharField(max_length=128)
    quantity = QuantityField()
    price = QuantityField()
    fee = QuantityField(default=0)
    fee_currency = models.CharField(max_length=16, blank=True, default="")
    filled_at = models.DateTimeField()

    class Meta:
        db_table = schema_table(SCHEMA, "order_fills")
        ordering = ["filled_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "fill_id"], name="order_fills_order_fill_uniq"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="order_fills_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="order_fills_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.fill_id}"


class Signal(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="signals")
    symbol = models.CharField(max_length=64)
    signal_type = models.CharField(max_length=50)
    direction = models.CharField(
        max_length=8, choices=SignalDirection.choices, default=SignalDirection.NEUTRAL
    )
    strength = PctField(null=True, blank=True)
    price = QuantityField(null=True, blank=True)
    generated_at = models.DateTimeField()
    filters_passed = models.JSONField(default=list, blank=True)
    filters_failed = models.JSONField(default=list, blank=True)
    validated = models.BooleanField(default=False)
    executed = models.BooleanField(default=False)
    trade = models.ForeignKey(
        Trade, on_delete=models.SET_NULL, null=True, blank=True, related_name="signals"
    )
    outcome = models.CharField(
        max_length=16, choices=SignalOutcome.choices, default=SignalOutcome.PENDING
    )
    outcome_pnl_usd = UsdField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "signals")
        ordering = ["-generated_at"]
        constraints = [
            choices_check("signals", "direction", SignalDirection),
            choices_check("signals", "outcome", SignalOutcome),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0), name="signals_price_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-generated_at"], name="signals_bot_generated_idx"),
            models.Index(fields=["-generated_at"], name="signals_generated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.signal_type} {self.symbol}"


class AccountBalance(models.Model):
    id = models.BigAutoField(primary_key=True)
    bot = models.ForeignKey(Bot, on_delete=models.PROTECT, db_index=False, related_name="balances")
    ts = models.DateTimeField()
    balance_usd = UsdField()
    equity_usd = UsdField()
    margin_used_usd = UsdField(default=0)
    available_margin_usd = UsdField(null=True, blank=True)
    unrealized_pnl_usd = UsdField(default=0)
    snapshot_type = models.CharField(
        max_length=16, choices=SnapshotType.choices, default=SnapshotType.PERIODIC
    )
    metadata = models.JSONField(default=dict, blank=True)
    run = run_field()

    class Meta:
        db_table = schema_table(SCHEMA, "account_balance")
        ordering = ["-ts"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "ts", "snapshot_type"], name="account_balance_bot_ts_type_uniq"
            ),
            choices_check("account_balance", "snapshot_type", SnapshotType),
            models.CheckConstraint(
                condition=Q(margin_used_usd__gte=0), name="account_balance_margin_gte_0"
            ),
        ]
        indexes = [
            models.Index(fields=["bot", "-ts"], name="account_balance_bot_ts_idx"),
            models.Index(fields=["-ts"], name="account_balance_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.ts:%Y-%m-%d %H:%M} {self.equity_usd}"
