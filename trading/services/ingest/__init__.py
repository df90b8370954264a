"""Set-based writes of what bots send: one statement per batch, never a query per row.

Rows arrive cleaned (trading.api.shapes): types, ranges and cross-field rules already hold.
The database keeps the last word through its constraints. One module per resource; common
holds what they share (counts, array parameters, refusals, SQL builders).
"""

from trading.services.ingest.backlog import risk_metrics_backlog_mark
from trading.services.ingest.balances import balance_upsert_many
from trading.services.ingest.common import (
    OrderNotFound,
    RowsRefused,
    UpsertCounts,
    array_literal,
    jsonb_text,
)
from trading.services.ingest.orders import order_fill_upsert_many, order_upsert_many
from trading.services.ingest.positions import position_upsert_many
from trading.services.ingest.signals import signal_upsert_many
from trading.services.ingest.trades import (
    TRADE_COLUMNS,
    trade_derived_fields,
    trade_upsert_many,
)

__all__ = [
    "TRADE_COLUMNS",
    "OrderNotFound",
    "RowsRefused",
    "UpsertCounts",
    "array_literal",
    "balance_upsert_many",
    "jsonb_text",
    "order_fill_upsert_many",
    "order_upsert_many",
    "position_upsert_many",
    "risk_metrics_backlog_mark",
    "signal_upsert_many",
    "trade_derived_fields",
    "trade_upsert_many",
]
