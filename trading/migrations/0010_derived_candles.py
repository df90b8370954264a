"""Derived candles (issue 15, item 4): trading.market_candles_derived holds the 5m, 15m, 1h, 4h
and 1d candles derived from the 1m candles, keyed like market_data's candles (its primary key is
the range scan's index); trading.market_candles_backlog the minutes not derived yet. The 1m candles
already stored go into the backlog, one row per market, so the beat task (or the first read of
a market's higher timeframe) derives them once."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0009_risk_metrics_sums_wider"),
    ]

    operations = [
        migrations.CreateModel(
            name="DerivedCandle",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "symbol",
                        "exchange",
                        "timeframe",
                        "ts",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("symbol", models.CharField(max_length=64)),
                ("exchange", models.CharField(max_length=50)),
                (
                    "timeframe",
                    models.CharField(
                        choices=[
                            ("5m", "M5"),
                            ("15m", "M15"),
                            ("1h", "H1"),
                            ("4h", "H4"),
                            ("1d", "D1"),
                        ],
                        max_length=4,
                    ),
                ),
                ("ts", models.DateTimeField(help_text="Bucket open time (UTC).")),
                ("open", models.DecimalField(decimal_places=10, max_digits=28)),
                ("high", models.DecimalField(decimal_places=10, max_digits=28)),
                ("low", models.DecimalField(decimal_places=10, max_digits=28)),
                ("close", models.DecimalField(decimal_places=10, max_digits=28)),
                ("volume", models.DecimalField(decimal_places=10, max_digits=38)),
                ("minutes", models.PositiveIntegerField()),
                ("candle_json", models.TextField(blank=True, null=True)),
            ],
            options={
                "db_table": 'trading"."market_candles_derived',
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("timeframe__in", ["5m", "15m", "1h", "4h", "1d"])),
                        name="market_candles_derived_timeframe_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("minutes__gt", 0)),
                        name="market_candles_derived_minutes_positive",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="DerivedCandleBacklog",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("symbol", models.CharField(max_length=64)),
                ("exchange", models.CharField(max_length=50)),
                ("first_ts", models.DateTimeField()),
                ("last_ts", models.DateTimeField()),
            ],
            options={
                "db_table": 'trading"."market_candles_backlog',
                "indexes": [
                    models.Index(
                        fields=["symbol", "exchange"], name="market_candles_backlog_market"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("last_ts__gte", models.F("first_ts"))),
                        name="market_candles_backlog_span",
                    )
                ],
            },
        ),
        migrations.RunSQL(
            sql="""
            INSERT INTO trading.market_candles_backlog (symbol, exchange, first_ts, last_ts)
            SELECT symbol, exchange, min(ts), max(ts) FROM trading.market_data
            WHERE timeframe = '1m' GROUP BY symbol, exchange
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
