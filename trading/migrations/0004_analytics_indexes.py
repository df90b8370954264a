"""A covering index for the metrics: a bot's closed trades in exit order (ties by id), with
every column the summary, the equity curve and the period breakdowns read, so that they are
answered by an index-only scan with no sort (analytics/selectors)."""

from django.db import migrations

CREATE = """
CREATE INDEX IF NOT EXISTS trades_bot_closed_curve_idx
    ON trading.trades (bot_id, exit_time, id)
    INCLUDE (pnl_usd, fees_usd, quantity, entry_price, entry_time, source)
    WHERE status = 'closed';
"""
DROP = "DROP INDEX IF EXISTS trading.trades_bot_closed_curve_idx;"


class Migration(migrations.Migration):
    dependencies = [("trading", "0003_list_indexes")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
