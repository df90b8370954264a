from django.db import migrations

from analytics import sql


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("trading", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(sql.CREATE_DAILY_PERFORMANCE, reverse_sql=sql.DROP_VIEWS),
        migrations.RunSQL(sql.CREATE_PERFORMANCE_SUMMARY, reverse_sql=migrations.RunSQL.noop),
    ]
