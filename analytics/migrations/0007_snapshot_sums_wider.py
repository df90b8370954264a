"""The portfolio snapshots' totals, exposure and VaR as NUMERIC(38, 8): a sum over the fleet of
legal rows cannot overflow them, so one bot cannot stop the fleet's snapshots. Only the precision
grows, the scale stays: PostgreSQL changes the catalog and rewrites no row."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0006_snapshot_taken_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="gross_exposure_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="long_exposure_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="net_exposure_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="realized_pnl_today_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="short_exposure_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="total_balance_usd",
            field=models.DecimalField(decimal_places=8, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="total_equity_usd",
            field=models.DecimalField(decimal_places=8, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="unrealized_pnl_usd",
            field=models.DecimalField(decimal_places=8, default=0, max_digits=38),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="var_95_usd",
            field=models.DecimalField(blank=True, decimal_places=8, max_digits=38, null=True),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="var_99_usd",
            field=models.DecimalField(blank=True, decimal_places=8, max_digits=38, null=True),
        ),
    ]
