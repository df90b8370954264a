"""The outbox is written by triggers on audit's event tables, in the transaction of the event:
whoever writes a risk event, a system event or a bot's pause (a service, bulk_create, raw SQL, an
import) writes its alerts with it, and audit, analytics and botconfig need not import alerts
(the app graph points one way). A row no active rule matches costs one small lookup; system
events and change records that can never match are filtered by the triggers' WHEN clause.

The unique key (kind, source, source_id, channel) makes each alert one per event episode and
channel: ON CONFLICT DO NOTHING turns a second firing (two rules to one channel) into nothing."""

from django.db import migrations

FUNCTIONS = """
CREATE FUNCTION alerts.severity_rank(s text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warning' THEN 2
                  WHEN 'error' THEN 3 WHEN 'critical' THEN 4 ELSE 0 END
$$;

-- When an alert written at ``at`` is due: the end of the rule's quiet hours (UTC) if ``at`` falls
-- inside them (a window may span midnight); critical alerts ignore quiet hours.
CREATE FUNCTION alerts.after_quiet(at timestamptz, qs time, qe time, severity text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN qs IS NULL OR qs = qe OR severity = 'critical' THEN at
        WHEN qs < qe AND (at AT TIME ZONE 'UTC')::time >= qs AND (at AT TIME ZONE 'UTC')::time < qe
            THEN ((at AT TIME ZONE 'UTC')::date + qe) AT TIME ZONE 'UTC'
        WHEN qs > qe AND (at AT TIME ZONE 'UTC')::time >= qs
            THEN ((at AT TIME ZONE 'UTC')::date + 1 + qe) AT TIME ZONE 'UTC'
        WHEN qs > qe AND (at AT TIME ZONE 'UTC')::time < qe
            THEN ((at AT TIME ZONE 'UTC')::date + qe) AT TIME ZONE 'UTC'
        ELSE at
    END
$$;

-- PL/pgSQL, not SQL: its statement's plan is cached for the session (a SQL function's is made
-- again on every call, which cost milliseconds per row of a bulk insert).
CREATE FUNCTION alerts.outbox_write(
    p_source text, p_source_id bigint, p_event_type text, p_severity text, p_bot_id text,
    p_message text, p_payload jsonb
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alerts.alerts (created_at, kind, source, source_id, rule_id, channel_id, bot_id,
                               event_type, severity, message, payload, status, due_at, first_due_at,
                               attempts, last_error)
    SELECT DISTINCT ON (r.channel_id)
           t.at, 'event', p_source, p_source_id, r.id, r.channel_id, p_bot_id,
           p_event_type, p_severity, p_message, p_payload, 'pending',
           alerts.after_quiet(t.at, r.quiet_start, r.quiet_end, p_severity),
           alerts.after_quiet(t.at, r.quiet_start, r.quiet_end, p_severity), 0, ''
    FROM (SELECT clock_timestamp() AS at) t, alerts.rules r
    JOIN alerts.channels c ON c.id = r.channel_id
    WHERE r.is_active AND c.is_active AND r.event_type = p_event_type
      AND alerts.severity_rank(p_severity) >= alerts.severity_rank(r.min_severity)
      AND (r.bot_id IS NULL OR r.bot_id = p_bot_id)
    ORDER BY r.channel_id, r.id
    ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION alerts.risk_event_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alerts.outbox_write(
        'risk_event', NEW.id,
        CASE WHEN NEW.event_type = 'stale_heartbeat' THEN 'stale_heartbeat' ELSE 'risk_limit' END,
        NEW.severity, NEW.bot_id,
        format('%s: %s on bot %s (actual %s, limit %s; %s)', upper(NEW.severity), NEW.event_type,
               NEW.bot_id, coalesce(trim_scale(NEW.actual_value)::text, '-'),
               coalesce(trim_scale(NEW.limit_value)::text, '-'), NEW.action_taken),
        jsonb_build_object(
            'risk_event_id', NEW.id, 'ts', NEW.ts, 'event_type', NEW.event_type,
            'limit_value', trim_scale(NEW.limit_value)::text,
            'actual_value', trim_scale(NEW.actual_value)::text,
            'action_taken', NEW.action_taken, 'details', NEW.details));
    RETURN NULL;
END
$$;

-- The resolution message goes where the event's alert went, for rules that ask for it.
CREATE FUNCTION alerts.risk_event_resolved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alerts.alerts (created_at, kind, source, source_id, rule_id, channel_id, bot_id,
                               event_type, severity, message, payload, status, due_at, first_due_at,
                               attempts, last_error)
    SELECT t.at, 'resolution', a.source, a.source_id, a.rule_id, a.channel_id,
           a.bot_id, a.event_type, a.severity,
           coalesce(nullif(r.resolution_message, ''),
                    format('RESOLVED: %s on bot %s', NEW.event_type, NEW.bot_id))
               || coalesce(' (' || nullif(NEW.resolution_note, '') || ')', ''),
           a.payload || jsonb_build_object('resolved_at', NEW.resolved_at,
                                           'resolution_note', NEW.resolution_note),
           'pending', t.at, t.at, 0, ''
    FROM (SELECT clock_timestamp() AS at) t, alerts.alerts a
    JOIN alerts.rules r ON r.id = a.rule_id
    WHERE a.kind = 'event' AND a.source = 'risk_event' AND a.source_id = NEW.id
      AND r.send_resolution
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION alerts.system_event_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    routed text := CASE
        WHEN NEW.component = 'data_quality' AND NEW.event_type <> 'data_quality_run'
            THEN 'data_quality'
        WHEN NEW.event_type IN ('backup_failed', 'backup_restore_failed') THEN 'backup_failed'
        WHEN NEW.event_type = 'backup_drill_failed' THEN 'drill_failed'
        WHEN NEW.event_type = 'task_failing' THEN 'task_failing'
    END;
BEGIN
    IF routed IS NOT NULL THEN
        PERFORM alerts.outbox_write(
            'system_event', NEW.id, routed, NEW.severity, NEW.bot_id,
            format('%s: %s', upper(NEW.severity), NEW.message),
            jsonb_build_object('system_event_id', NEW.id, 'ts', NEW.ts,
                               'component', NEW.component, 'event_type', NEW.event_type,
                               'details', NEW.details));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION alerts.bot_paused_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alerts.outbox_write(
        'change_log', NEW.id, 'bot_paused', 'warning', NEW.entity_id,
        format('WARNING: bot %s paused%s', NEW.entity_id,
               coalesce(': ' || nullif(NEW.note, ''), '')),
        jsonb_build_object('change_log_id', NEW.id, 'ts', NEW.ts, 'user_id', NEW.user_id,
                           'note', NEW.note));
    RETURN NULL;
END
$$;

CREATE TRIGGER risk_events_alerts AFTER INSERT ON audit.risk_events
    FOR EACH ROW EXECUTE FUNCTION alerts.risk_event_outbox();
CREATE TRIGGER risk_events_resolved_alerts AFTER UPDATE OF resolved ON audit.risk_events
    FOR EACH ROW WHEN (NEW.resolved AND NOT OLD.resolved)
    EXECUTE FUNCTION alerts.risk_event_resolved();
CREATE TRIGGER system_events_alerts AFTER INSERT ON audit.system_events
    FOR EACH ROW WHEN (NEW.component = 'data_quality' OR NEW.event_type IN
        ('backup_failed', 'backup_restore_failed', 'backup_drill_failed', 'task_failing'))
    EXECUTE FUNCTION alerts.system_event_outbox();
CREATE TRIGGER change_log_alerts AFTER INSERT ON audit.change_log
    FOR EACH ROW WHEN (NEW.entity_type = 'trading.bot' AND NEW.action = 'pause')
    EXECUTE FUNCTION alerts.bot_paused_outbox();
"""

DROP = """
DROP TRIGGER IF EXISTS change_log_alerts ON audit.change_log;
DROP TRIGGER IF EXISTS system_events_alerts ON audit.system_events;
DROP TRIGGER IF EXISTS risk_events_resolved_alerts ON audit.risk_events;
DROP TRIGGER IF EXISTS risk_events_alerts ON audit.risk_events;
DROP FUNCTION IF EXISTS alerts.bot_paused_outbox();
DROP FUNCTION IF EXISTS alerts.system_event_outbox();
DROP FUNCTION IF EXISTS alerts.risk_event_resolved();
DROP FUNCTION IF EXISTS alerts.risk_event_outbox();
DROP FUNCTION IF EXISTS alerts.outbox_write(text, bigint, text, text, text, text, jsonb);
DROP FUNCTION IF EXISTS alerts.after_quiet(timestamptz, time, time, text);
DROP FUNCTION IF EXISTS alerts.severity_rank(text);
"""


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=DROP)]
