"""When a snapshot's figures were read (taken_at): later than its bucket for one a later run
filled."""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0005_bot_summary_checkpoints"),
    ]

    operations = [
        migrations.AddField(
            model_name="portfoliosnapshot",
            name="taken_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                help_text="When the figures were read: within the bucket, or later for a bucket a missed run left empty and a later run filled (with the figures of that later time).",
            ),
        ),
        migrations.AlterField(
            model_name="portfoliosnapshot",
            name="ts",
            field=models.DateTimeField(help_text="The start of the 5-minute bucket.", unique=True),
        ),
        # Every snapshot so far was taken within its bucket: its start is the closest figure.
        migrations.RunSQL(
            "UPDATE analytics.portfolio_snapshots SET taken_at = ts", migrations.RunSQL.noop
        ),
    ]
