"""The materialized views, faster to refresh, with the same columns and values (analytics/sql.py):
the summary adds up the daily view's rows, which gain best_trade_usd, worst_trade_usd and
duration_s for it, and takes its drawdown from one ordered pass over each bot's trades
(the function analytics.bot_drawdown). The summary now reads the daily view: refresh it second.

Reversing recreates the views as 0002 and 0003 left them (0002 keeps their first SQL).
"""

from importlib import import_module

from django.db import migrations, models

from analytics import sql

DROP = """
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_performance_summary;
DROP FUNCTION IF EXISTS analytics.bot_drawdown(text, numeric);
DROP MATERIALIZED VIEW IF EXISTS analytics.bot_daily_performance;
"""

# As 0002 and 0003 left them.
_FIRST = import_module("analytics.migrations.0002_materialized_views")
PREVIOUS_DAY_INDEX = """
CREATE INDEX bot_daily_performance_day_idx
    ON analytics.bot_daily_performance (day) INCLUDE (bot_id, net_pnl_usd);
"""


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_day_index_and_trade_versions")]

    operations = [
        migrations.AddField(
            model_name="botdailyperformance",
            name="best_trade_usd",
            field=models.DecimalField(decimal_places=8, max_digits=20),
        ),
        migrations.AddField(
            model_name="botdailyperformance",
            name="worst_trade_usd",
            field=models.DecimalField(decimal_places=8, max_digits=20),
        ),
        migrations.AddField(
            model_name="botdailyperformance",
            name="duration_s",
            field=models.DecimalField(decimal_places=6, max_digits=40),
        ),
        migrations.RunSQL(
            DROP
            + sql.CREATE_DAILY_PERFORMANCE
            + sql.CREATE_DAILY_DAY_INDEX
            + sql.CREATE_PERFORMANCE_SUMMARY,
            reverse_sql=DROP
            + _FIRST.CREATE_DAILY_PERFORMANCE
            + PREVIOUS_DAY_INDEX
            + _FIRST.CREATE_PERFORMANCE_SUMMARY,
        ),
    ]
