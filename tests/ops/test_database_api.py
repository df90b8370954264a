"""/api/v1/database/...: health, metrics and connection info for staff; optimize for superusers."""

from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from rest_framework.test import APIClient

from audit.models import SystemEvent
from audit.monitoring import store
from audit.monitoring.maintenance import OPTIMIZE_LOCK
from audit.monitoring.probes import fresh_connection
from tests.api.conftest import client_with
from trading.db import advisory_lock_key
from trading.models import Bot
from trading.services.tokens import bot_token_create, staff_token_create

CONNECTIONS_KEYS = {
    "total",
    "in_use",
    "active",
    "idle",
    "idle_in_transaction",
    "waiting_on_locks",
    "oldest_transaction_seconds",
    "max_connections",
}
URLS = (
    "/api/v1/database/health",
    "/api/v1/database/metrics",
    "/api/v1/database/connection-info",
)


@pytest.fixture
def staff_client(db: None) -> APIClient:
    """Staff, not a superuser."""
    analyst = User.objects.create_user("analyst", password="pw", is_staff=True)
    return client_with(staff_token_create(user=analyst).key)


@pytest.fixture
def superuser_client(db: None) -> APIClient:
    root = User.objects.create_superuser("dba", "dba@example.com", "pw")
    return client_with(staff_token_create(user=root).key)


# --- Who may call ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_reads_bots_and_strangers_do_not(staff_client: APIClient, bot: Bot) -> None:
    bot_client = client_with(bot_token_create(bot=bot).key)
    for url in URLS:
        assert APIClient().get(url).status_code == 401, url
        assert bot_client.get(url).status_code == 403, url
        assert staff_client.get(url).status_code == 200, url


# --- Health ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_shape(staff_client: APIClient) -> None:
    body = staff_client.get("/api/v1/database/health").json()

    assert set(body) == {
        "status",
        "latency_ms",
        "server_version",
        "in_recovery",
        "started_at",
        "uptime_seconds",
        "size_bytes",
        "connections",
    }
    assert body["status"] == "ok"
    assert body["in_recovery"] is False
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        assert body["server_version"] == cursor.fetchone()[0]
    assert 0 < body["latency_ms"] < 1000
    assert body["uptime_seconds"] > 0
    assert body["size_bytes"] > 1_000_000
    assert set(body["connections"]) == CONNECTIONS_KEYS
    assert body["connections"]["total"] >= 1
    assert body["connections"]["in_use"] >= 1  # this request's own connection is active


# --- Metrics --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_percentiles_error_rate_connections_and_tables(staff_client: APIClient) -> None:
    store.flush()
    store.reset()
    for _ in range(98):
        store.db_observe(seconds=0.0007, error=False)  # (0.5 ms, 1 ms]
    store.db_observe(seconds=0.3, error=False)  # (250 ms, 500 ms]
    store.db_observe(seconds=0.3, error=True)

    body = staff_client.get("/api/v1/database/metrics").json()

    assert set(body) == {
        "since",
        "counters_available",
        "queries",
        "requests",
        "connections",
        "tables",
        "extensions",
    }
    assert set(body["extensions"]) == {"alerts"}  # tests/alerts/test_escalation.py: its figures
    assert body["counters_available"] is True
    assert body["since"] is not None
    queries = body["queries"]
    # this request's own queries (token, last use) come on top of the 100 above
    assert 100 < queries["count"] < 110
    assert queries["errors"] == 1
    assert queries["error_rate"] == round(1 / queries["count"], 6)
    latency = queries["latency_ms"]
    assert set(latency) == {"p50", "p95", "p99", "mean"}
    assert 0.5 < latency["p50"] <= 1.0
    assert latency["p95"] <= 1.0
    assert 250 < latency["p99"] <= 500
    assert latency["p50"] <= latency["p95"] <= latency["p99"]
    assert body["requests"]["count"] == 0  # this request is counted once it has answered
    assert body["requests"]["error_rate"] == 0.0
    assert set(body["connections"]) == CONNECTIONS_KEYS
    tables = {(t["schema"], t["table"]): t for t in body["tables"]}
    assert tables[("trading", "trades")]["kind"] == "table"
    assert tables[("trading", "trades")]["total_bytes"] > 0
    assert tables[("analytics", "bot_daily_performance")]["kind"] == "materialized view"
    assert set(tables[("trading", "trades")]) == {
        "schema",
        "table",
        "kind",
        "total_bytes",
        "rows_estimate",
    }
    store.reset()


@pytest.mark.django_db
def test_metrics_without_redis_has_null_counters(staff_client: APIClient, settings: Any) -> None:
    from tests.ops.test_probes import dead_redis_caches

    settings.CACHES = dead_redis_caches(settings)

    body = staff_client.get("/api/v1/database/metrics").json()

    assert body["counters_available"] is False
    assert body["since"] is None
    assert body["queries"] == {
        "count": None,
        "errors": None,
        "error_rate": None,
        "latency_ms": {"p50": None, "p95": None, "p99": None, "mean": None},
    }
    assert body["tables"]


# --- Connection info ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_connection_info_never_shows_the_password(
    staff_client: APIClient, monkeypatch: Any
) -> None:
    secret = "S3cr3t/pa:ss@word"
    config = connections["default"].settings_dict
    monkeypatch.setitem(config, "PASSWORD", secret)
    monkeypatch.setitem(
        config, "OPTIONS", {**config["OPTIONS"], "password": secret, "sslpassword": secret}
    )

    response = staff_client.get("/api/v1/database/connection-info")

    assert response.status_code == 200
    text = response.content.decode()
    for form in (secret, quote(secret, safe=""), quote(secret), "S3cr3t", "***", "password"):
        assert form not in text, form
    body = response.json()
    assert body == {
        "host": config["HOST"],
        "port": int(config["PORT"]),
        "database": config["NAME"],
        "user": config["USER"],
        "server_version": body["server_version"],
        "ssl": False,
        "sslmode": None,
        "connect_timeout": 5,
        "conn_max_age": config["CONN_MAX_AGE"],
        "conn_health_checks": True,
        "pool": {"enabled": False, "min_size": None, "max_size": None},
        "server_side_cursors": True,
        "pg_stat_statements": False,
        "connections": body["connections"],
    }
    assert set(body["connections"]) == CONNECTIONS_KEYS


# --- Optimize -------------------------------------------------------------------------------------


def last_vacuum(table: str) -> Any:
    with fresh_connection() as conn:
        row = conn.execute(
            "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables "
            "WHERE schemaname || '.' || relname = %s",
            [table],
        ).fetchone()
    return row


@pytest.mark.django_db(transaction=True)
def test_optimize_as_superuser_vacuums_refreshes_and_records(superuser_client: APIClient) -> None:
    before = last_vacuum("trading.trades")

    response = superuser_client.post("/api/v1/database/optimize")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"seconds", "event_id", "steps"}
    steps = {(s["action"], s["target"]): s for s in body["steps"]}
    views = "analytics.bot_daily_performance, analytics.bot_performance_summary"
    refresh = steps[("refresh", f"{views}, analytics.portfolio_daily_pnl")]
    assert refresh["status"] == "done"
    assert body["steps"][0] == refresh  # first, so that the VACUUM clears what it leaves
    for table in ("trading.trades", "audit.system_events", "analytics.bot_daily_performance"):
        assert steps[("vacuum_analyze", table)]["status"] == "done", table
    assert all(s["status"] == "done" and s["reason"] == "" for s in body["steps"])
    assert body["seconds"] >= sum(s["seconds"] for s in body["steps"]) * 0.99

    after = last_vacuum("trading.trades")
    assert after[0] is not None and after[1] is not None
    assert after != before
    event = SystemEvent.objects.get(pk=body["event_id"])
    assert (event.component, event.event_type, event.severity) == (
        "database",
        "database_optimize",
        "info",
    )
    assert event.message.startswith("dba ran database optimize: 3 views refreshed, ")
    assert event.details["username"] == "dba"
    assert event.details["steps"] == body["steps"]


@pytest.mark.django_db(transaction=True)
def test_optimize_as_staff_or_bot_is_refused_and_does_nothing(
    staff_client: APIClient, bot: Bot
) -> None:
    before = last_vacuum("trading.trades")
    bot_client = client_with(bot_token_create(bot=bot).key)

    assert staff_client.post("/api/v1/database/optimize").status_code == 403
    assert bot_client.post("/api/v1/database/optimize").status_code == 403
    assert APIClient().post("/api/v1/database/optimize").status_code == 401
    assert staff_client.get("/api/v1/database/optimize").status_code in (403, 405)

    assert last_vacuum("trading.trades") == before
    assert not SystemEvent.objects.filter(event_type="database_optimize").exists()


@pytest.mark.django_db(transaction=True)
def test_optimize_while_another_runs_is_409_and_does_nothing(
    superuser_client: APIClient,
) -> None:
    with fresh_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_lock_key(OPTIMIZE_LOCK)])
        response = superuser_client.post("/api/v1/database/optimize")

    assert response.status_code == 409
    assert response.json() == {
        "error": "busy",
        "detail": "Another optimize run is under way; try again when it is done.",
    }
    assert not SystemEvent.objects.filter(event_type="database_optimize").exists()
