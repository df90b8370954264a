"""Checkpoints of the bot summaries (analytics.BotSummaryCheckpoint), and what tells a reader that
one still holds: analytics.bot_trade_versions gains

- ``checkpoint_version``: the trades version of the last checkpoint armed (built from a snapshot
  at that version, and armed while the version was still that);
- ``earliest_exit_touched``: the earliest exit_time among the closed, non-backtest trades, as
  they were or as they became, that any statement changed since then (NULL: none).

The read of a summary from a checkpoint is the function analytics.bot_summary_from_checkpoint
(analytics/summary_sql.py). The version trigger's functions now also keep ``earliest_exit_touched`` in the same upsert, so a
change to the trades costs no extra statement. A checkpoint cut at C serves while
``checkpoint_version`` is its version and no trade that exited before C was touched.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

import analytics.models
from analytics.summary_sql import (
    CREATE_CHECKPOINT_SUMMARY,
    CREATE_FLOAT8_EXACT,
    DROP_CHECKPOINT_SUMMARY,
    DROP_FLOAT8_EXACT,
)


def _bump_function(name: str, rows: str, comment: str = "") -> str:
    """A version trigger's function: the bump of every bot among ``rows`` (the statement's
    transition table, or both), keeping the earliest exit touched of a closed, non-backtest
    trade. The three triggers differ only in the rows they see."""
    return f"""
CREATE OR REPLACE FUNCTION analytics.{name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
{comment}    INSERT INTO analytics.bot_trade_versions AS v
        (bot_id, version, changed_at, earliest_exit_touched)
    SELECT c.bot_id, 1, now(),
           min(c.exit_time) FILTER (WHERE c.status = 'closed' AND c.source <> 'backtest')
    FROM {rows} c
    GROUP BY c.bot_id
    ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at,
            earliest_exit_touched = LEAST(v.earliest_exit_touched, EXCLUDED.earliest_exit_touched);
    RETURN NULL;
END
$$;
"""  # noqa: S608 - the function's name and the rows are constants below


_ADD_COLUMNS = """
ALTER TABLE analytics.bot_trade_versions
    ADD COLUMN checkpoint_version bigint,
    ADD COLUMN earliest_exit_touched timestamptz;
"""
FORWARD = (
    _ADD_COLUMNS
    + _bump_function(
        "bot_trade_versions_bump",
        """(
        SELECT bot_id, exit_time, status, source FROM old_rows
        UNION ALL
        SELECT bot_id, exit_time, status, source FROM new_rows
    )""",
        comment="""    -- One row per bot the statement touched; in bot order, so that concurrent statements
    -- take the rows' locks in one order. The earliest exit of a closed, non-backtest trade
    -- among the old and new rows: a checkpoint cut after it no longer holds.
""",
    )
    + _bump_function("bot_trade_versions_bump_new", "new_rows")
    + _bump_function("bot_trade_versions_bump_old", "old_rows")
)

# The functions as 0003 made them, then the columns dropped.
BACKWARD = """
CREATE OR REPLACE FUNCTION analytics.bot_trade_versions_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now()
    FROM (
        SELECT bot_id FROM old_rows
        UNION
        SELECT bot_id FROM new_rows
    ) c
    ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION analytics.bot_trade_versions_bump_new() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now() FROM (SELECT DISTINCT bot_id FROM new_rows) c ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION analytics.bot_trade_versions_bump_old() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now() FROM (SELECT DISTINCT bot_id FROM old_rows) c ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

ALTER TABLE analytics.bot_trade_versions
    DROP COLUMN checkpoint_version,
    DROP COLUMN earliest_exit_touched;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_faster_views"),
        ("trading", "0006_risk_metrics_backlog"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, reverse_sql=BACKWARD),
        migrations.CreateModel(
            name="BotSummaryCheckpoint",
            fields=[
                (
                    "bot",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="trading.bot",
                    ),
                ),
                (
                    "cut",
                    models.DateTimeField(
                        help_text="Trades that exited before this (a UTC midnight)."
                    ),
                ),
                (
                    "trades_version",
                    models.BigIntegerField(help_text="The bot's trades version it was built at."),
                ),
                ("initial_capital_usd", models.DecimalField(decimal_places=8, max_digits=20)),
                ("built_at", models.DateTimeField()),
                ("trades_closed", models.IntegerField()),
                ("wins", models.IntegerField()),
                ("losses", models.IntegerField()),
                ("breakeven", models.IntegerField()),
                (
                    "win_pnl_usd",
                    models.DecimalField(
                        decimal_places=8, help_text="Sum of pnl_usd over the wins.", max_digits=40
                    ),
                ),
                (
                    "loss_pnl_usd",
                    models.DecimalField(
                        decimal_places=8,
                        help_text="Sum of pnl_usd over the losses (not above 0).",
                        max_digits=40,
                    ),
                ),
                ("net_pnl_usd", models.DecimalField(decimal_places=8, max_digits=40)),
                ("fees_usd", models.DecimalField(decimal_places=8, max_digits=40)),
                ("volume_usd", models.DecimalField(decimal_places=20, max_digits=60)),
                ("best_trade_usd", models.DecimalField(decimal_places=8, max_digits=20, null=True)),
                (
                    "worst_trade_usd",
                    models.DecimalField(decimal_places=8, max_digits=20, null=True),
                ),
                (
                    "duration_s_sum",
                    analytics.models.ExactDecimalField(decimal_places=500, max_digits=1000),
                ),
                (
                    "win_duration_s_sum",
                    analytics.models.ExactDecimalField(decimal_places=500, max_digits=1000),
                ),
                (
                    "loss_duration_s_sum",
                    analytics.models.ExactDecimalField(decimal_places=500, max_digits=1000),
                ),
                (
                    "first_trade_at",
                    models.DateTimeField(help_text="The earliest entry_time.", null=True),
                ),
                (
                    "last_trade_at",
                    models.DateTimeField(help_text="The latest exit_time.", null=True),
                ),
                (
                    "equity_usd",
                    models.DecimalField(
                        decimal_places=8,
                        help_text="Realized equity after the last trade.",
                        max_digits=40,
                    ),
                ),
                (
                    "peak_usd",
                    models.DecimalField(
                        decimal_places=8,
                        help_text="Running peak of the equity (from initial capital).",
                        max_digits=40,
                    ),
                ),
                (
                    "peak_at",
                    models.DateTimeField(
                        help_text="Last exit at which equity was the peak.", null=True
                    ),
                ),
                ("max_drawdown_usd", models.DecimalField(decimal_places=8, max_digits=40)),
                ("trough_trade_id", models.BigIntegerField(null=True)),
                ("trough_at", models.DateTimeField(null=True)),
                (
                    "trough_peak_usd",
                    models.DecimalField(decimal_places=8, max_digits=40, null=True),
                ),
                (
                    "trough_equity_usd",
                    models.DecimalField(decimal_places=8, max_digits=40, null=True),
                ),
                ("trough_peak_at", models.DateTimeField(null=True)),
                (
                    "daily_returns",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=analytics.models.ExactDecimalField(
                            decimal_places=500, max_digits=1000, null=True
                        ),
                        default=list,
                        size=None,
                    ),
                ),
            ],
            options={
                "db_table": 'analytics"."bot_summary_checkpoints',
            },
        ),
        migrations.RunSQL(CREATE_FLOAT8_EXACT, reverse_sql=DROP_FLOAT8_EXACT),
        migrations.RunSQL(CREATE_CHECKPOINT_SUMMARY, reverse_sql=DROP_CHECKPOINT_SUMMARY),
    ]
