"""One freqtrade trade and its orders, as rows of the unified schema (FREQTRADE.md -> SCHEMA.md).

Pure functions: no database. The rules that are not obvious from the column names:

- quantity is the ORIGINAL size: the sum of the entry orders' fills, each less the fee paid in
  the base currency (``ft_fee_base``), as freqtrade sums them. After a partial exit,
  freqtrade's ``amount`` is what is left, so it is the open position's quantity, not the trade's.
- exit_price is the quantity-weighted average over all filled exit orders; freqtrade's
  ``close_rate`` is the last exit's price only.
- pnl_usd of a closed trade is ``close_profit_abs`` (net of fees and funding fees; what every
  freqtrade statistic sums). An open trade has no pnl_usd: what its partial exits realized is
  the position's realized_pnl_usd (and stays in strategy_data.legacy.realized_profit).
- pnl_pct is ours (pnl_usd / (quantity x entry_price) x 100, trade_derived_fields), not
  freqtrade's close_profit, which is relative to the margin and includes the entry fee.
- fees_usd is recomputed from the orders (filled cost x the trade's fee rate of that side), as
  freqtrade's fee_open_cost / fee_close_cost are not totals.
- entry_time is ``open_date``, freqtrade's own start of the trade: durations then equal
  freqtrade's (close_date - open_date). The entry order's fill time is kept beside it.
- An order whose ``filled`` is NULL filled nothing (a cancelled entry is written so): freqtrade's
  own recalculation skips it (``not o.filled``).
- Every source column without a home of its own goes to the row's JSONB under ``legacy``; text
  too long for its column (or holding NUL) is cut, and kept whole in the JSONB
  (``strategy_data.uncut``, an order's ``metadata.order_id``) with a warning. A NUL character
  (which jsonb cannot hold) in a kept column is written as the text ``\\u0000``.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from typing import Any

from importers.core import column_text, json_nul_escaped, nul_escaped
from importers.freqtrade.source import Row, flag, utc
from trading.models import (
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionStatus,
    Trade,
    TradeSide,
    TradeSource,
    TradeStatus,
)
from trading.services.ingest import trade_derived_fields

QUANTITY = Decimal("1e-10")  # prices and quantities: NUMERIC(28, 10)
USD = Decimal("1e-8")  # USD amounts: NUMERIC(20, 8)
PCT = Decimal("1e-6")  # percentages and ratios: NUMERIC(12, 6)

TAG_LENGTH = Trade._meta.get_field("exit_reason").max_length or 0  # freqtrade's 255 too
EXCHANGE_ORDER_ID_LENGTH = Order._meta.get_field("exchange_order_id").max_length or 0

# Stake currencies whose amounts are taken as USD as they are (pnl_usd, fees_usd).
USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "USDE"})

# Trade columns whose value lands, unchanged, in a column of the unified trade.
_TRADE_DIRECT = frozenset(
    {"id", "pair", "exchange", "is_short", "is_open", "open_rate", "open_date", "close_date"}
    | {"leverage", "exit_reason", "enter_tag", "close_profit_abs"}
)
# Order columns likewise (status, order_type and side are kept: their spelling is mapped).
_ORDER_DIRECT = frozenset({"id", "ft_trade_id", "order_id", "ft_pair", "stop_price"})

_ORDER_STATUS = {
    "open": OrderStatus.SUBMITTED,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def dec(value: Any, places: Decimal) -> Decimal | None:
    """A REAL as the Decimal of its shortest text (``repr``), rounded half-even to ``places``."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)
    return Decimal(value).quantize(places, rounding=ROUND_HALF_EVEN)


def exact(value: Any) -> Decimal:
    """A REAL as the Decimal of its shortest text, not rounded (for sums and products)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return Decimal(0)
    return Decimal(repr(value) if isinstance(value, float) else value)


def legacy_value(value: Any) -> Any:
    """A source value as JSON keeps it: floats as numbers (exact: JSON numbers are their repr),
    times as ISO text, non-finite floats as text (JSONB has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def legacy(row: Row, skip: frozenset[str]) -> dict[str, Any]:
    return {k: legacy_value(v) for k, v in row.items() if k not in skip}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | bytes):
        return legacy_value(value)
    if isinstance(value, Decimal):  # a NUMERIC column of a PostgreSQL source (freqtrade's are
        return float(value)  # floats): as the float freqtrade itself would read
    raise TypeError(f"{type(value).__name__} is not JSON")


class LegacyJson:
    """A row's columns but ``skip``, as JSON text, exactly as ``json.dumps(legacy(row, skip))``
    writes it. The hot path of an import: the kept columns are picked in C once the row's
    columns are known (every row of a query has the same), and a NaN or infinity, which JSON
    cannot hold, falls back to ``legacy``."""

    def __init__(self, skip: frozenset[str]) -> None:
        self.skip = skip
        self._columns: frozenset[str] = frozenset()
        self._kept: tuple[str, ...] = ()
        self._pick: Callable[[Row], Any] = lambda row: ()

    def text(self, row: Row) -> str:
        if row.keys() != self._columns:
            self._columns = frozenset(row)
            self._kept = tuple(k for k in row if k not in self.skip)
            pick = itemgetter(*self._kept) if self._kept else (lambda row: ())
            self._pick = (lambda row: (pick(row),)) if len(self._kept) == 1 else pick
        values = dict(zip(self._kept, self._pick(row), strict=True))
        try:
            return json.dumps(values, allow_nan=False, default=_json_default)
        except ValueError:
            return json.dumps(legacy(row, self.skip))


def trade_key(trade_id: Any) -> str:
    return f"ft-{trade_id}"


def order_key(order_row_id: Any) -> str:
    return f"ft-{order_row_id}"


Warning = tuple[str, str, str]  # (unified table, legacy key, message), as the Report takes it

_ORDER_SIDES = frozenset(OrderSide.values)
_ORDER_TYPES = frozenset(OrderType.values)
_TRADE_LEGACY = LegacyJson(_TRADE_DIRECT)
_ORDER_LEGACY = LegacyJson(_ORDER_DIRECT)


@dataclass
class MappedTrade:
    """A freqtrade trade as unified rows, with what the import reports about it.

    JSONB values (strategy_data, an order's metadata) are JSON text, ready to be written.
    An order row carries its fill (``fill_*``, None when it filled nothing): a freqtrade order
    fills once, so its fill_id is its own client_order_id.
    """

    trade: dict[str, Any]
    orders: list[dict[str, Any]]
    position: dict[str, Any] | None  # the open position of an open trade
    partial_exit: bool
    warnings: list[Warning] = field(default_factory=list)

    @property
    def fills(self) -> int:
        return sum(1 for order in self.orders if order["fill_quantity"] is not None)


def _safe_price(order: Row) -> Any:
    """The price an order filled at, as freqtrade's Order.safe_price reads it."""
    for name in ("average", "price", "stop_price", "ft_price"):
        if order.get(name):
            return order[name]
    return None


def _filled(order: Row) -> Any:
    """What an order filled. NULL is nothing: freqtrade's own trade recalculation skips an
    order with ``not o.filled`` (a cancelled entry that never filled is written so), although
    its ``Order.safe_filled`` would read NULL as the whole amount."""
    filled = order.get("filled")
    return filled if filled is not None else 0


def _order_type(raw: Any) -> str:
    kind = str(raw or "").lower().replace("-", "_")
    if kind in _ORDER_TYPES:
        return kind
    if "take_profit" in kind:
        return OrderType.TAKE_PROFIT
    if "stop" in kind:
        return OrderType.STOP_LIMIT if "limit" in kind else OrderType.STOP
    return OrderType.LIMIT if "limit" in kind else OrderType.MARKET


def map_trade(trade: Row, orders: list[Row], custom_data: list[Row]) -> MappedTrade:
    key = trade_key(trade["id"])
    warnings: list[Warning] = []
    is_short = flag(trade.get("is_short"))
    is_open = flag(trade["is_open"])
    entry_side = OrderSide.SELL if is_short else OrderSide.BUY
    exit_side = OrderSide.BUY if is_short else OrderSide.SELL
    fee_open = exact(trade.get("fee_open"))
    fee_close = exact(trade.get("fee_close"))
    # The rates as their metadata keeps them (a JSON number, as float() of the rate writes it).
    fee_rate_json = {True: json.dumps(float(fee_open)), False: json.dumps(float(fee_close))}
    stake = trade.get("stake_currency") or ""
    fee_currency_open = trade.get("fee_open_currency") or stake
    fee_currency_close = trade.get("fee_close_currency") or stake
    trade_open_date = utc(trade["open_date"])

    unified_orders: list[dict[str, Any]] = []
    entry_qty = Decimal(0)
    exit_qty = Decimal(0)
    exit_value = Decimal(0)
    fees = Decimal(0)
    exit_orders_filled = 0
    entry_filled_at: datetime | None = None
    last_exit_at: datetime | None = None
    for order in orders:
        ref = order_key(order["id"])
        is_entry = order.get("ft_order_side") == entry_side
        filled = exact(_filled(order))
        price = _safe_price(order)
        if filled < 0:
            filled = Decimal(0)
        cost = exact(order["cost"]) if order.get("cost") else filled * exact(price)
        fee = cost * (fee_open if is_entry else fee_close)
        filled_at = utc(order.get("order_filled_date")) or utc(order.get("order_update_date"))
        # freqtrade counts an order into its trade once it is no longer open and filled something
        counted = filled > 0 and not flag(order.get("ft_is_open")) and price is not None
        if filled > 0 and price is None:
            warnings.append(("orders", ref, f"of {key}: filled {filled} without any price"))
        if counted:
            fees += fee
            # What the trade holds of it: the fill less a fee paid in the base currency
            # (freqtrade's safe_amount_after_fee, which its own recalculation sums).
            net = filled - exact(order.get("ft_fee_base"))
            if is_entry:
                entry_qty += net
                entry_filled_at = entry_filled_at or filled_at
            else:
                exit_qty += net
                exit_value += net * exact(price)
                exit_orders_filled += 1
                last_exit_at = filled_at or last_exit_at

        side = order.get("side")
        if side not in _ORDER_SIDES:
            side = order.get("ft_order_side")
            if side not in _ORDER_SIDES:  # a stoploss order: always an exit
                side = exit_side
        quantity = dec(order.get("amount"), QUANTITY) or dec(order.get("ft_amount"), QUANTITY)
        filled_q = dec(filled, QUANTITY) or Decimal(0)
        if quantity is None or quantity <= 0 or filled_q > quantity:
            warnings.append(
                (
                    "orders",
                    ref,
                    f"of {key}: amount {order.get('amount')!r} below its fill"
                    f" {order.get('filled')!r}; quantity set to the filled amount",
                )
            )
            quantity = max(filled_q, quantity or Decimal(0))
        if quantity <= 0:
            warnings.append(("orders", ref, f"of {key}: no amount at all; order not imported"))
            continue
        status = _ORDER_STATUS.get(str(order.get("status") or "").lower())
        if status is None:
            status = OrderStatus.SUBMITTED if flag(order.get("ft_is_open")) else OrderStatus.FAILED
        if status == OrderStatus.SUBMITTED and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        price_d = dec(order.get("price"), QUANTITY)
        stop_d = dec(order.get("stop_price"), QUANTITY)
        fill_price = dec(price, QUANTITY) if filled_q > 0 and price is not None else None
        has_fill = fill_price is not None and fill_price > 0
        submitted_at = utc(order.get("order_date"))
        role = '"entry"}' if is_entry else '"exit"}'
        order_id, cut = column_text(order.get("order_id"), EXCHANGE_ORDER_ID_LENGTH)
        if cut is not None:  # the full id stays in the order's metadata
            warnings.append(("orders", ref, f"of {key}: order_id {cut}; kept whole in metadata"))
            role = f'{role[:-1]}, "order_id": {json.dumps(nul_escaped(order.get("order_id")))}}}'
        unified_orders.append(
            {
                "client_order_id": ref,
                "exchange_order_id": order_id,
                "trade_id": key,
                "symbol": order.get("ft_pair") or trade["pair"],
                "side": side,
                "order_type": _order_type(order.get("order_type")),
                "quantity": quantity,
                "price": price_d if price_d and price_d > 0 else None,
                "stop_price": stop_d if stop_d and stop_d > 0 else None,
                "fees_usd": fee.quantize(USD, rounding=ROUND_HALF_EVEN) if filled_q else Decimal(0),
                "status": status,
                "retry_count": 0,
                "last_error": str(order.get("ft_cancel_reason") or ""),
                "submitted_at": submitted_at,
                "filled_at": filled_at if filled_q > 0 else None,
                "metadata": json_nul_escaped(
                    f'{{"legacy": {_ORDER_LEGACY.text(order)}, "fee_rate":'
                    f' {fee_rate_json[is_entry]}, "role": {role}'
                ),
                "fill_quantity": filled_q if has_fill else None,
                "fill_price": fill_price if has_fill else None,
                "fill_fee": fee.quantize(QUANTITY, rounding=ROUND_HALF_EVEN) if has_fill else None,
                "fill_fee_currency": (fee_currency_open if is_entry else fee_currency_close)
                if has_fill
                else None,
                "fill_at": (filled_at or submitted_at or trade_open_date) if has_fill else None,
            }
        )

    open_date = trade_open_date
    assert open_date is not None  # noqa: S101 - NOT NULL in freqtrade's schema
    amount = dec(trade["amount"], QUANTITY) or Decimal(0)
    quantity = entry_qty.quantize(QUANTITY, rounding=ROUND_HALF_EVEN)
    if quantity <= 0:
        warnings.append(("trades", key, "no filled entry order; quantity taken from amount"))
        quantity = amount
    entry_price = dec(trade["open_rate"], QUANTITY)
    if not is_open and exit_qty and abs(exit_qty - entry_qty) > entry_qty * Decimal("1e-6"):
        warnings.append(
            ("trades", key, f"exits filled {exit_qty}, entries {entry_qty}; quantity = entries")
        )

    row: dict[str, Any] = {
        "trade_id": key,
        "symbol": trade["pair"],
        "exchange": trade["exchange"],
        "side": TradeSide.SHORT if is_short else TradeSide.LONG,
        "quantity": quantity,
        "entry_price": entry_price,
        "exit_price": None,
        "entry_time": open_date,
        "exit_time": None,
        "fees_usd": fees.quantize(USD, rounding=ROUND_HALF_EVEN),
        "pnl_usd": None,
        "status": TradeStatus.OPEN if is_open else TradeStatus.CLOSED,
        "source": TradeSource.IMPORTED,
        "leverage": dec(trade.get("leverage"), PCT) or Decimal(1),
    }
    cut_text: dict[str, str] = {}  # source text a column could not hold whole, as it was
    for name, column in (("exit_reason", "exit_reason"), ("entry_tag", "enter_tag")):
        row[name], cut = column_text(trade.get(column), TAG_LENGTH)
        if cut is not None:
            warnings.append(("trades", key, f"{column} {cut}; kept whole in strategy_data"))
            cut_text[column] = nul_escaped(trade.get(column))
    if not is_open:
        if exit_qty > 0:
            row["exit_price"] = (exit_value / exit_qty).quantize(QUANTITY, ROUND_HALF_EVEN)
        else:
            warnings.append(
                ("trades", key, "closed without a filled exit order; exit = close_rate")
            )
            row["exit_price"] = dec(trade.get("close_rate"), QUANTITY)
        row["exit_time"] = utc(trade.get("close_date")) or last_exit_at
        if row["exit_time"] is None:
            warnings.append(("trades", key, "closed without close_date; exit time = open_date"))
            row["exit_time"] = open_date
        profit = trade.get("close_profit_abs")
        if profit is None:
            profit = trade.get("realized_profit")
            warnings.append(("trades", key, "closed without close_profit_abs; pnl = realized"))
        row["pnl_usd"] = dec(profit, USD)
    trade_derived_fields(row)  # pnl_pct (and pnl from prices, were a closed trade's missing)

    extra: dict[str, Any] = {}
    if entry_filled_at is not None:
        extra["entry_filled_at"] = entry_filled_at.isoformat()
    if exit_orders_filled:
        extra["exit_orders_filled"] = exit_orders_filled
    if cut_text:
        extra["uncut"] = cut_text
    if custom_data:
        extra["custom_data"] = {
            str(cd["cd_key"]): legacy(cd, frozenset({"id", "ft_trade_id", "cd_key"}))
            for cd in custom_data
        }
    extra_json = json.dumps(extra)[1:-1]
    row["strategy_data"] = json_nul_escaped(
        f'{{"legacy": {_TRADE_LEGACY.text(trade)}{", " if extra_json else ""}{extra_json}}}'
    )
    if stake.upper() not in USD_LIKE:
        warnings.append(
            ("trades", key, f"stake currency {stake!r} is not USD-like; amounts kept as they are")
        )

    partial = exit_orders_filled > (0 if is_open else 1)
    position = None
    if is_open:
        remaining = amount if amount > 0 else quantity
        position = {
            "symbol": row["symbol"],
            "exchange": row["exchange"],
            "side": row["side"],
            "status": PositionStatus.PARTIALLY_CLOSED
            if exit_orders_filled
            else PositionStatus.OPEN,
            "quantity": remaining,
            "initial_quantity": max(quantity, remaining),
            "avg_entry_price": entry_price,
            "current_price": None,
            "unrealized_pnl_usd": Decimal(0),
            "realized_pnl_usd": dec(trade.get("realized_profit"), USD) or Decimal(0),
            "stop_loss": _positive(dec(trade.get("stop_loss"), QUANTITY)),
            "take_profit": None,
            "trailing_stop_pct": None,
            "trailing_stop_price": None,
            "highest_price": _positive(dec(trade.get("max_rate"), QUANTITY)),
            "lowest_price": _positive(dec(trade.get("min_rate"), QUANTITY)),
            "leverage": row["leverage"],
            "opened_at": open_date,
            "closed_at": None,
            "metadata": {
                "legacy": {"trade_id": key, **_position_legacy(trade)},
            },
        }
    return MappedTrade(
        trade=row,
        orders=unified_orders,
        position=position,
        partial_exit=partial,
        warnings=warnings,
    )


_POSITION_LEGACY = (
    "amount",
    "stake_amount",
    "is_stop_loss_trailing",
    "stop_loss_pct",
    "initial_stop_loss",
    "liquidation_price",
    "funding_fees",
    "funding_fee_running",
    "trading_mode",
)


def _position_legacy(trade: Row) -> dict[str, Any]:
    return {k: legacy_value(trade[k]) for k in _POSITION_LEGACY if k in trade}


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None
