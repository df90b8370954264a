"""Refresh of the materialized views (analytics/sql.py)."""

from django.db import connection

from analytics.sql import MATERIALIZED_VIEWS


def views_refresh() -> None:
    """Refresh both materialized views CONCURRENTLY: readers keep the old rows until the new ones
    are in (each view has the unique index CONCURRENTLY needs)."""
    with connection.cursor() as cursor:
        for view in MATERIALIZED_VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
