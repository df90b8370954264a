"""The fleet's realized pnl per UTC day as a materialized view of its own
(analytics.portfolio_daily_pnl, analytics/sql.py), so that the portfolio's VaR reads a row a day
instead of a row per bot and day. Filled from the daily view as it stands; refreshed with it."""

from django.db import migrations

from analytics import sql

DROP = "DROP MATERIALIZED VIEW IF EXISTS analytics.portfolio_daily_pnl;"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0007_snapshot_sums_wider")]

    operations = [migrations.RunSQL(sql.CREATE_PORTFOLIO_DAILY, reverse_sql=DROP)]
