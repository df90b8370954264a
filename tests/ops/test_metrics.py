"""/metrics: valid Prometheus text, every family API.md and the issue name, values that move with
what happened, and the request/query/task counters every process adds into Redis."""

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import signals
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from atb_site.celery import app as celery_app
from audit.monitoring import histogram, store
from audit.monitoring.prometheus import metrics_text
from tests.factories import make_bot
from tests.ops.test_probes import backup_finished_at, beat_ran_at, dead_redis_caches
from trading.services.tokens import bot_token_create, staff_token_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
Labels = tuple[tuple[str, str], ...]


@dataclass
class Parsed:
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    def named(self, name: str) -> dict[Labels, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def parse(text: str) -> Parsed:
    """The Prometheus text format (0.0.4), strictly: every sample belongs to a family declared
    before it with # HELP and # TYPE; histogram samples are _bucket (with le), _sum, _count."""
    assert text.endswith("\n")
    out = Parsed()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            out.helps[name] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name in out.helps, f"TYPE before HELP: {line}"
            out.types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, raw_labels, raw_value = match.groups()
        labels: list[tuple[str, str]] = []
        if raw_labels:
            consumed = "".join(m.group(0) for m in LABEL.finditer(raw_labels))
            assert consumed == raw_labels, f"bad labels: {line!r}"
            labels = [(m.group(1), m.group(2)) for m in LABEL.finditer(raw_labels)]
        family = name
        if name not in out.types:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert out.types.get(family) == "histogram", f"undeclared family: {line!r}"
            if name.endswith("_bucket"):
                assert "le" in dict(labels), line
        key = (name, tuple(sorted(labels)))
        assert key not in out.samples, f"duplicate sample: {line!r}"
        out.samples[key] = float(raw_value)
    return out


FAMILIES = {
    "atb_http_requests_total": "counter",
    "atb_http_request_duration_seconds": "histogram",
    "atb_db_query_duration_seconds": "histogram",
    "atb_db_query_errors_total": "counter",
    "atb_celery_tasks_total": "counter",
    "atb_db_connections": "gauge",
    "atb_table_size_bytes": "gauge",
    "atb_table_rows_estimate": "gauge",
    "atb_backup_age_seconds": "gauge",
    "atb_beat_last_run_age_seconds": "gauge",
    "atb_bot_heartbeat_age_seconds": "gauge",
    "atb_database_up": "gauge",
    "atb_redis_up": "gauge",
    "atb_ready": "gauge",
}


SCRAPE_TOKEN = "scrape-me-4242"


@pytest.fixture(autouse=True)
def scrape_token(settings: Any) -> None:
    settings.METRICS_TOKEN = SCRAPE_TOKEN


def scrape(client: Client | None = None) -> Any:
    """GET /metrics as Prometheus would, with the scraper's token."""
    return (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}")


@pytest.fixture(autouse=True)
def fresh_counters() -> Any:
    store.flush()
    store.reset()
    yield
    store.reset()


@celery_app.task(name="tests.ops.metrics_ok")
def ok_task() -> int:
    return 1


@celery_app.task(name="tests.ops.metrics_boom")
def boom_task() -> None:
    raise ValueError("boom")


@celery_app.task(name="tests.ops.metrics_retry", bind=True, max_retries=1)
def retry_task(self: Any) -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return "done"


# --- The format -----------------------------------------------------------------------------------


def test_metrics_is_prometheus_text_with_every_family() -> None:
    response = scrape()

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    parsed = parse(response.content.decode())
    assert {name: parsed.types.get(name) for name in FAMILIES} == FAMILIES
    assert parsed.value("atb_database_up") == 1
    assert parsed.value("atb_redis_up") == 1
    assert parsed.value("atb_ready") == 1


def test_gauges_pinned_under_a_fixed_now() -> None:
    make_bot("hb_fresh", last_heartbeat_at=NOW - timedelta(seconds=42))
    make_bot("hb_old", last_heartbeat_at=NOW - timedelta(hours=2, seconds=0.5))
    make_bot("hb_never")
    backup_finished_at(NOW - timedelta(minutes=50))
    beat_ran_at(NOW - timedelta(seconds=75))

    parsed = parse(metrics_text(now=NOW))

    assert parsed.named("atb_bot_heartbeat_age_seconds") == {
        (("bot_id", "hb_fresh"),): 42.0,
        (("bot_id", "hb_old"),): 7200.5,
    }
    assert parsed.value("atb_backup_age_seconds") == 3000.0
    assert parsed.value("atb_beat_last_run_age_seconds") == 75.0
    sizes = parsed.named("atb_table_size_bytes")
    assert sizes[(("schema", "trading"), ("table", "bots"))] > 0
    assert (("schema", "analytics"), ("table", "bot_daily_performance")) in sizes
    assert {dict(labels)["schema"] for labels in sizes} <= {
        "trading",
        "audit",
        "config",
        "analytics",
        "alerts",
    }
    connections = parsed.named("atb_db_connections")
    assert connections[(("state", "total"),)] >= 1
    assert connections[(("state", "max_connections"),)] >= connections[(("state", "total"),)]


def test_without_a_backup_or_beat_run_their_ages_have_no_sample() -> None:
    parsed = parse(metrics_text(now=NOW))

    assert parsed.types["atb_backup_age_seconds"] == "gauge"
    assert parsed.named("atb_backup_age_seconds") == {}
    assert parsed.named("atb_beat_last_run_age_seconds") == {}


def test_heartbeat_age_over_http_matches_the_clock() -> None:
    make_bot("hb_http", last_heartbeat_at=timezone.now() - timedelta(seconds=30))

    parsed = parse(scrape().content.decode())

    age = parsed.value("atb_bot_heartbeat_age_seconds", bot_id="hb_http")
    assert 30.0 <= age < 32.0


# --- Counters -------------------------------------------------------------------------------------


def test_request_counters_go_up_by_route_method_and_status() -> None:
    client = Client()
    for _ in range(3):
        assert client.get("/health/live").status_code == 200
    assert client.post("/health/live").status_code == 405
    assert client.get("/no/such/page").status_code == 404

    parsed = parse(scrape(client).content.decode())

    requests = parsed.named("atb_http_requests_total")
    assert requests[(("method", "GET"), ("route", "/health/live"), ("status", "200"))] == 3
    assert requests[(("method", "POST"), ("route", "/health/live"), ("status", "405"))] == 1
    assert requests[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    live = {"method": "GET", "route": "/health/live"}
    assert parsed.value("atb_http_request_duration_seconds_count", **live) == 3
    assert parsed.value("atb_http_request_duration_seconds_bucket", **live, le="+Inf") == 3
    assert 0 < parsed.value("atb_http_request_duration_seconds_sum", **live) < 3.0
    buckets = [
        parsed.value("atb_http_request_duration_seconds_bucket", **live, le=repr(b))
        for b in histogram.HTTP_BUCKETS
    ]
    assert buckets == sorted(buckets)  # cumulative

    again = parse(scrape(client).content.decode())
    assert again.value("atb_http_requests_total", **live, status="200") == 3
    # the first /metrics request is counted by the time of the second
    assert again.value("atb_http_requests_total", method="GET", route="/metrics", status="200") == 1


def test_query_counters_count_queries_and_errors() -> None:
    with connection.cursor() as cursor:
        for _ in range(5):
            cursor.execute("SELECT 1")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")

    parsed = parse(metrics_text(now=NOW))

    assert parsed.value("atb_db_query_errors_total") == 1
    assert parsed.value("atb_db_query_duration_seconds_count") >= 6
    assert parsed.value("atb_db_query_duration_seconds_bucket", le="+Inf") == parsed.value(
        "atb_db_query_duration_seconds_count"
    )


def test_celery_task_outcomes_are_counted_by_task() -> None:
    ok_task.apply()
    ok_task.apply()
    boom_task.apply()
    retry_task.apply()
    signals.task_revoked.send(
        sender=ok_task, request=None, terminated=True, signum=15, expired=False
    )

    tasks = parse(metrics_text(now=NOW)).named("atb_celery_tasks_total")

    assert tasks == {
        (("outcome", "succeeded"), ("task", "tests.ops.metrics_ok")): 2,
        (("outcome", "revoked"), ("task", "tests.ops.metrics_ok")): 1,
        (("outcome", "failed"), ("task", "tests.ops.metrics_boom")): 1,
        (("outcome", "retried"), ("task", "tests.ops.metrics_retry")): 1,
        (("outcome", "succeeded"), ("task", "tests.ops.metrics_retry")): 1,
    }


def test_counts_of_two_processes_add_up_in_redis() -> None:
    # Another process's flush is the same HINCRBY on the same keys: simulated by flushing twice.
    store.http_observe(method="GET", route="/x", status=200, seconds=0.01)
    assert store.flush()
    store.http_observe(method="GET", route="/x", status=200, seconds=0.02)
    assert store.flush()

    snap = store.snapshot()
    assert snap is not None

    assert snap.http_requests[("GET", "/x", "200")] == 2
    assert snap.http_latency[("GET", "/x")].count == 2
    assert snap.http_latency[("GET", "/x")].sum == pytest.approx(0.03)


def test_with_redis_down_counts_wait_in_memory_and_requests_do_not(settings: Any) -> None:
    with override_settings(CACHES=dead_redis_caches(settings), MONITORING_FLUSH_SECONDS=0):
        start = time.monotonic()
        for _ in range(20):
            assert Client().get("/health/live").status_code == 200
        elapsed = time.monotonic() - start
        metrics = scrape()

    assert elapsed < 1.0  # one failed flush, then the back-off: no timeout per request
    assert metrics.status_code == 200
    parsed = parse(metrics.content.decode())
    assert parsed.value("atb_redis_up") == 0
    assert parsed.value("atb_database_up") == 1
    assert parsed.value("atb_ready") == 1  # Redis is not needed to serve
    assert parsed.named("atb_http_requests_total") == {}
    assert parsed.named("atb_table_size_bytes")  # PostgreSQL's part still answers

    # Redis back: nothing counted meanwhile was lost.
    assert store.flush()
    snap = store.snapshot()
    assert snap is not None
    assert snap.http_requests[("GET", "/health/live", "200")] == 20


def test_a_label_value_is_escaped() -> None:
    store.celery_observe(task='we"ird\\name\nx', outcome="failed")

    parsed = parse(metrics_text(now=NOW))

    assert parsed.named("atb_celery_tasks_total") == {
        (("outcome", "failed"), ("task", 'we\\"ird\\\\name\\nx')): 1
    }


# --- Who may scrape -------------------------------------------------------------------------------


def test_only_the_scrapers_token_or_staff_may_scrape(settings: Any) -> None:
    staff = User.objects.create_user("ops", is_staff=True)
    clerk = User.objects.create_user("clerk", is_staff=False)
    session = Client()
    session.force_login(staff)
    clerk_session = Client()
    clerk_session.force_login(clerk)
    staff_key = staff_token_create(user=staff).key
    clerk_key = staff_token_create(user=clerk).key
    bot_key = bot_token_create(bot=make_bot("scraper_bot")).key

    def status(client: Client, authorization: str | None = None) -> int:
        if authorization is None:
            return client.get("/metrics").status_code
        return client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code

    missing = Client().get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert missing.json()["error"] == "not_authenticated"
    assert status(Client(), "Bearer nope") == 401
    assert status(Client(), f"Basic {SCRAPE_TOKEN}") == 401
    assert status(Client(), f"Bearer {bot_key}") == 401
    assert status(Client(), f"Bearer {clerk_key}") == 401
    assert status(clerk_session) == 401
    right = scrape()
    assert right.status_code == 200
    assert parse(right.content.decode()).value("atb_database_up") == 1
    assert status(Client(), f"Bearer {staff_key}") == 200
    assert status(session) == 200

    settings.METRICS_TOKEN = ""  # unset: only the staff ways
    assert status(Client(), f"Bearer {SCRAPE_TOKEN}") == 401
    assert status(Client(), "Bearer ") == 401
    assert status(Client(), f"Bearer {staff_key}") == 200


# --- Percentiles ----------------------------------------------------------------------------------


def test_quantiles_interpolate_inside_the_bucket() -> None:
    bounds = (0.001, 0.01, 0.1)
    assert histogram.quantile(0.5, bounds, [0, 0, 0, 0]) is None
    # 10 in (0, 1 ms], 80 in (1, 10 ms], 10 in (10, 100 ms]
    counts = [10, 80, 10, 0]
    assert histogram.quantile(0.05, bounds, counts) == pytest.approx(0.0005)
    assert histogram.quantile(0.5, bounds, counts) == pytest.approx(0.001 + 0.009 * 40 / 80)
    assert histogram.quantile(0.95, bounds, counts) == pytest.approx(0.01 + 0.09 * 5 / 10)
    assert histogram.quantile(0.99, [1.0], [0, 7]) == 1.0  # +Inf: the largest finite bound
    assert histogram.bucket_index(bounds, 0.001) == 0  # le: upper bound inclusive
    assert histogram.bucket_index(bounds, 0.0011) == 1
    assert histogram.bucket_index(bounds, 5.0) == 3
