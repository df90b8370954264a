from django.db import migrations

APPEND_ONLY = """
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER system_events_append_only
    BEFORE UPDATE OR DELETE ON audit.system_events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER change_log_append_only
    BEFORE UPDATE OR DELETE ON audit.change_log
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS change_log_append_only ON audit.change_log;
DROP TRIGGER IF EXISTS system_events_append_only ON audit.system_events;
DROP FUNCTION IF EXISTS audit.refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_ONLY, reverse_sql=DROP)]
