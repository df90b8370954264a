"""The suite talks to a real PostgreSQL and a real Redis; the liveness probe needs neither."""

import uuid

from django.core.cache import cache, caches
from django.db import connection
from django.test import Client

from atb_site.celery import app as celery_app


def test_the_database_is_postgresql_in_utc(db: None) -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW TIME ZONE")
        assert cursor.fetchone() == ("UTC",)


def test_the_cache_is_a_real_redis() -> None:
    key = f"probe-{uuid.uuid4()}"
    cache.set(key, {"n": 1}, timeout=30)
    assert cache.get(key) == {"n": 1}
    cache.delete(key)
    assert cache.get(key) is None
    assert type(caches["default"]).__name__ == "RedisCache"


def test_the_celery_broker_is_redis_and_reachable() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.transport_cls == "redis"


def test_liveness_answers_without_touching_the_database() -> None:
    # No db fixture: pytest-django makes any database access here raise.
    response = Client().get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
