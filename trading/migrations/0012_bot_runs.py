"""Bot runs (issue 18): trading.bot_runs, and a nullable run_id on trades, orders, signals and
account_balance. Every existing row keeps run_id NULL (written before runs existed); adding a
nullable column without a default rewrites no table.

A row's run must be one of its own bot's: a composite foreign key (bot_id, run_id) onto
bot_runs (bot_id, id), which the database checks on every write path, ORM or raw SQL. On the
existing rows, all NULL, its validation reads each table once without blocking writes
(NOT VALID, then VALIDATE)."""

import django.db.models.deletion
from django.db import migrations, models

RUN_OF_SAME_BOT = """
ALTER TABLE trading.trades ADD CONSTRAINT trades_run_of_same_bot_fk
    FOREIGN KEY (bot_id, run_id) REFERENCES trading.bot_runs (bot_id, id)
    ON DELETE RESTRICT NOT VALID;
ALTER TABLE trading.trades VALIDATE CONSTRAINT trades_run_of_same_bot_fk;
ALTER TABLE trading.orders ADD CONSTRAINT orders_run_of_same_bot_fk
    FOREIGN KEY (bot_id, run_id) REFERENCES trading.bot_runs (bot_id, id)
    ON DELETE RESTRICT NOT VALID;
ALTER TABLE trading.orders VALIDATE CONSTRAINT orders_run_of_same_bot_fk;
ALTER TABLE trading.signals ADD CONSTRAINT signals_run_of_same_bot_fk
    FOREIGN KEY (bot_id, run_id) REFERENCES trading.bot_runs (bot_id, id)
    ON DELETE RESTRICT NOT VALID;
ALTER TABLE trading.signals VALIDATE CONSTRAINT signals_run_of_same_bot_fk;
ALTER TABLE trading.account_balance ADD CONSTRAINT account_balance_run_of_same_bot_fk
    FOREIGN KEY (bot_id, run_id) REFERENCES trading.bot_runs (bot_id, id)
    ON DELETE RESTRICT NOT VALID;
ALTER TABLE trading.account_balance VALIDATE CONSTRAINT account_balance_run_of_same_bot_fk;
"""
RUN_OF_SAME_BOT_DROP = """
ALTER TABLE trading.trades DROP CONSTRAINT IF EXISTS trades_run_of_same_bot_fk;
ALTER TABLE trading.orders DROP CONSTRAINT IF EXISTS orders_run_of_same_bot_fk;
ALTER TABLE trading.signals DROP CONSTRAINT IF EXISTS signals_run_of_same_bot_fk;
ALTER TABLE trading.account_balance DROP CONSTRAINT IF EXISTS account_balance_run_of_same_bot_fk;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0011_market_data_partitioned"),
    ]

    operations = [
        migrations.CreateModel(
            name="BotRun",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "mode",
                    models.CharField(
                        choices=[
                            ("live", "Live"),
                            ("dry_run", "Dry Run"),
                            ("backtest", "Backtest"),
                            ("imported", "Imported"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("open", "Open"), ("closed", "Closed"), ("crashed", "Crashed")],
                        default="open",
                        max_length=16,
                    ),
                ),
                ("started_at", models.DateTimeField()),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                ("end_reason", models.CharField(blank=True, default="", max_length=255)),
                (
                    "config_version",
                    models.PositiveIntegerField(
                        blank=True, help_text="The bot's configuration version in force.", null=True
                    ),
                ),
                ("code_version", models.CharField(blank=True, default="", max_length=128)),
                ("strategy_name", models.CharField(blank=True, default="", max_length=100)),
                ("strategy_params", models.JSONField(blank=True, default=dict)),
                ("host", models.CharField(blank=True, default="", max_length=255)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "bot",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="runs",
                        to="trading.bot",
                    ),
                ),
            ],
            options={
                "db_table": 'trading"."bot_runs',
                "ordering": ["-started_at"],
            },
        ),
        migrations.AddField(
            model_name="accountbalance",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trading.botrun",
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trading.botrun",
            ),
        ),
        migrations.AddField(
            model_name="signal",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trading.botrun",
            ),
        ),
        migrations.AddField(
            model_name="trade",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trading.botrun",
            ),
        ),
        migrations.AddIndex(
            model_name="trade",
            index=models.Index(
                condition=models.Q(("run__isnull", False), ("status", "closed")),
                fields=["run", "exit_time", "id"],
                include=["pnl_usd", "fees_usd", "quantity", "entry_price", "entry_time", "source"],
                name="trades_run_closed_curve_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.UniqueConstraint(
                fields=("bot", "started_at"), name="bot_runs_bot_started_uniq"
            ),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.UniqueConstraint(fields=("bot", "id"), name="bot_runs_bot_id_uniq"),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("ended_at__isnull", True)),
                fields=("bot",),
                name="bot_runs_one_open",
            ),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.CheckConstraint(
                condition=models.Q(("mode__in", ["live", "dry_run", "backtest", "imported"])),
                name="bot_runs_mode_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["open", "closed", "crashed"])),
                name="bot_runs_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="botrun",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("ended_at__isnull", True), ("status", "open")),
                    models.Q(
                        models.Q(("status", "open"), _negated=True),
                        ("ended_at__gte", models.F("started_at")),
                    ),
                    _connector="OR",
                ),
                name="bot_runs_open_iff_not_ended",
            ),
        ),
        migrations.RunSQL(RUN_OF_SAME_BOT, reverse_sql=RUN_OF_SAME_BOT_DROP),
    ]
