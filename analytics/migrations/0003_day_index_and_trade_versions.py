"""For the speed of the analytics reads (analytics/selectors):

- an index on analytics.bot_daily_performance by day: the portfolio summary reads the view's
  last day and the fleet's pnl over a range of days;
- analytics.bot_trade_versions: one row per bot whose version goes up, in the same transaction,
  with every statement that inserts, updates or deletes any of the bot's trades (statement-level
  triggers on trading.trades). A bot summary computed from the trades is cached under the
  version it read, so a cached summary is served only while the bot's trades are unchanged.
"""

from django.db import migrations

CREATE = """
CREATE INDEX IF NOT EXISTS bot_daily_performance_day_idx
    ON analytics.bot_daily_performance (day) INCLUDE (bot_id, net_pnl_usd);

CREATE TABLE analytics.bot_trade_versions (
    bot_id     text PRIMARY KEY,
    version    bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO analytics.bot_trade_versions (bot_id, version, changed_at)
SELECT bot_id, 1, now() FROM trading.bots;

CREATE FUNCTION analytics.bot_trade_versions_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One row per bot the statement touched; in bot order, so that concurrent statements
    -- take the rows' locks in one order.
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now()
    FROM (
        SELECT bot_id FROM old_rows
        UNION
        SELECT bot_id FROM new_rows
    ) c
    ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics.bot_trade_versions_bump_new() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now() FROM (SELECT DISTINCT bot_id FROM new_rows) c ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics.bot_trade_versions_bump_old() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics.bot_trade_versions AS v (bot_id, version, changed_at)
    SELECT c.bot_id, 1, now() FROM (SELECT DISTINCT bot_id FROM old_rows) c ORDER BY c.bot_id
    ON CONFLICT (bot_id) DO UPDATE
        SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER trades_version_insert AFTER INSERT ON trading.trades
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.bot_trade_versions_bump_new();
CREATE TRIGGER trades_version_update AFTER UPDATE ON trading.trades
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.bot_trade_versions_bump();
CREATE TRIGGER trades_version_delete AFTER DELETE ON trading.trades
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.bot_trade_versions_bump_old();
"""

DROP = """
DROP TRIGGER IF EXISTS trades_version_insert ON trading.trades;
DROP TRIGGER IF EXISTS trades_version_update ON trading.trades;
DROP TRIGGER IF EXISTS trades_version_delete ON trading.trades;
DROP FUNCTION IF EXISTS analytics.bot_trade_versions_bump();
DROP FUNCTION IF EXISTS analytics.bot_trade_versions_bump_new();
DROP FUNCTION IF EXISTS analytics.bot_trade_versions_bump_old();
DROP TABLE IF EXISTS analytics.bot_trade_versions;
DROP INDEX IF EXISTS analytics.bot_daily_performance_day_idx;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_materialized_views"),
        ("trading", "0004_analytics_indexes"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
