"""Refresh of the materialized views (analytics/sql.py)."""

from django.db import connection, transaction

from analytics.sql import MATERIALIZED_VIEWS

# Enough for the daily view's sorts, and for the sort by whole row with which CONCURRENTLY checks
# the new rows for duplicates, to stay in memory; for this transaction only.
REFRESH_WORK_MEM = "32MB"


def views_refresh() -> None:
    """Refresh the materialized views CONCURRENTLY: readers keep the old rows until the new ones
    are in (each view has the unique index CONCURRENTLY needs).

    In MATERIALIZED_VIEWS order, since the summary and the portfolio's daily pnl add up the daily
    view's rows; in one transaction, so that readers see the views change together."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [REFRESH_WORK_MEM])
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
