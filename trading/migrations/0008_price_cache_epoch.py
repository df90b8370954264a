"""The price cache's epoch: a sequence bumped by every process that could not write a price to
Redis, so that no process serves a price cache seeded before it (trading/services/live_state.py).
A sequence, not a row: nextval never waits for another transaction nor rolls back."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0007_trade_tags_as_wide_as_freqtrade"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE trading.price_cache_epoch",
            "DROP SEQUENCE trading.price_cache_epoch",
        ),
    ]
