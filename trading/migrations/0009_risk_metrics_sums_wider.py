"""risk_metrics' sums (the day's pnl, fees, exposure, equity and its peak) as NUMERIC(38, 8):
a sum of legal rows cannot overflow them, so one bot cannot stop the fleet's rollup. Only the
precision grows, the scale stays: PostgreSQL changes the catalog and rewrites no row."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0008_price_cache_epoch"),
    ]

    operations = [
        migrations.AlterField(
            model_name="riskmetric",
            name="equity_close_usd",
            field=models.DecimalField(blank=True, decimal_places=8, max_digits=38, null=True),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="equity_peak_usd",
            field=models.DecimalField(
                blank=True,
                decimal_places=8,
                help_text="Running peak of the realized equity curve up to the end of the day; the next day's rollup continues the drawdown from it instead of rereading all history.",
                max_digits=38,
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="exposure_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="fees_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="gross_loss_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="gross_profit_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="riskmetric",
            name="net_pnl_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
    ]
