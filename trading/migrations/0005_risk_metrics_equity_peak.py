from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_analytics_indexes")]

    operations = [
        migrations.AddField(
            model_name="riskmetric",
            name="equity_peak_usd",
            field=models.DecimalField(
                blank=True,
                decimal_places=8,
                help_text="Running peak of the realized equity curve up to the end of the day; the next day's rollup continues the drawdown from it instead of rereading all history.",
                max_digits=20,
                null=True,
            ),
        ),
    ]
