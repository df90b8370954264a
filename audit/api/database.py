"""The database endpoints (API.md "Probes and operations"): health, metrics and connection info
for staff; optimize (VACUUM ANALYZE and refresh of the materialized views) for superusers.

With PostgreSQL down none of them can authenticate the caller: they answer 503 (the
MonitoringMiddleware), never 500. The logic is in audit/monitoring/.
"""

import time
from typing import Any

from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.monitoring import selectors, store
from audit.monitoring.histogram import HTTP_BUCKETS, quantile
from audit.monitoring.maintenance import OptimizeBusy, database_optimize
from audit.monitoring.store import Histogram
from trading.api.permissions import IsStaff


class IsSuperuser(BasePermission):
    message = "Superusers only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_active and user.is_superuser


# --- Shapes -------------------------------------------------------------------------------------


class ConnectionsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Client connections to our database.")
    in_use = serializers.IntegerField(help_text="Those not idle: in a statement or transaction.")
    active = serializers.IntegerField()
    idle = serializers.IntegerField()
    idle_in_transaction = serializers.IntegerField()
    waiting_on_locks = serializers.IntegerField()
    oldest_transaction_seconds = serializers.FloatField(allow_null=True)
    max_connections = serializers.IntegerField(help_text="The server's limit, all databases.")


class LatencySerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)


class CountsSerializer(serializers.Serializer):
    count = serializers.IntegerField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)
    latency_ms = LatencySerializer()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "errors" is also the name of Serializer's own property: added here, not declared.
        fields = super().get_fields()
        return {
            "count": fields["count"],
            "errors": serializers.IntegerField(allow_null=True),
            "error_rate": fields["error_rate"],
            "latency_ms": fields["latency_ms"],
        }


class TableSizeSerializer(serializers.Serializer):
    schema = serializers.CharField()
    table = serializers.CharField()
    kind = serializers.CharField()
    total_bytes = serializers.IntegerField()
    rows_estimate = serializers.IntegerField(allow_null=True)


class DatabaseHealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    latency_ms = serializers.FloatField()
    server_version = serializers.CharField()
    in_recovery = serializers.BooleanField(help_text="True on a read replica.")
    started_at = serializers.DateTimeField()
    uptime_seconds = serializers.FloatField()
    size_bytes = serializers.IntegerField()
    connections = ConnectionsSerializer()


class DatabaseMetricsSerializer(serializers.Serializer):
    since = serializers.DateTimeField(allow_null=True, help_text="When counting started.")
    counters_available = serializers.BooleanField(help_text="False when Redis is unreachable.")
    queries = CountsSerializer(help_text="SQL statements of every process (execute wrapper).")
    requests = CountsSerializer(help_text="HTTP requests; errors are 5xx answers.")
    connections = ConnectionsSerializer()
    tables = TableSizeSerializer(many=True)
    extensions = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Sections other apps add, by app (alerts: outbox backlog, delivery latency, "
        "failures per channel).",
    )


class ConnectionInfoSerializer(serializers.Serializer):
    host = serializers.CharField(allow_null=True)
    port = serializers.IntegerField(allow_null=True)
    database = serializers.CharField()
    user = serializers.CharField()
    server_version = serializers.CharField()
    ssl = serializers.BooleanField(help_text="Whether this connection is encrypted.")
    sslmode = serializers.CharField(allow_null=True)
    connect_timeout = serializers.IntegerField(allow_null=True)
    conn_max_age = serializers.IntegerField(allow_null=True)
    conn_health_checks = serializers.BooleanField()
    pool = inline_serializer(
        "DatabasePool",
        {
            "enabled": serializers.BooleanField(),
            "min_size": serializers.IntegerField(allow_null=True),
            "max_size": serializers.IntegerField(allow_null=True),
        },
    )
    server_side_cursors = serializers.BooleanField(help_text="False behind PgBouncer.")
    pg_stat_statements = serializers.BooleanField()
    connections = ConnectionsSerializer()


class OptimizeStepSerializer(serializers.Serializer):
    target = serializers.CharField()
    action = serializers.ChoiceField(choices=["refresh", "vacuum_analyze"])
    status = serializers.ChoiceField(choices=["done", "skipped"])
    seconds = serializers.FloatField()
    reason = serializers.CharField(allow_blank=True)


class OptimizeSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    event_id = serializers.IntegerField(help_text="The system event recording the run.")
    steps = OptimizeStepSerializer(many=True)


# --- Views --------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _counts(count: int | None, errors: int | None, hist: Histogram | None) -> dict[str, Any]:
    latency: dict[str, float | None] = {"p50": None, "p95": None, "p99": None, "mean": None}
    if hist is not None and hist.count:
        latency = {
            "p50": _ms(quantile(0.50, hist.bounds, hist.counts)),
            "p95": _ms(quantile(0.95, hist.bounds, hist.counts)),
            "p99": _ms(quantile(0.99, hist.bounds, hist.counts)),
            "mean": _ms(hist.sum / hist.count),
        }
    rate = None
    if count and errors is not None:
        rate = round(errors / count, 6)
    elif count == 0:
        rate = 0.0
    return {"count": count, "errors": errors, "error_rate": rate, "latency_ms": latency}


class DatabaseHealthView(APIView):
    """PostgreSQL as this process sees it: round trip, version, replica or not, uptime, size,
    connections (staff only)."""

    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="database_health_retrieve",
        summary="PostgreSQL's health (staff only)",
        description=__doc__,
        responses={200: DatabaseHealthSerializer},
    )
    def get(self, request: Request) -> Response:
        start = time.perf_counter()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        latency = time.perf_counter() - start
        server = selectors.server_info()
        body = {
            "status": "ok",
            "latency_ms": _ms(latency),
            "server_version": server.version,
            "in_recovery": server.in_recovery,
            "started_at": server.started_at,
            "uptime_seconds": round((time.time() - server.started_at.timestamp()), 3),
            "size_bytes": server.size_bytes,
            "connections": selectors.connection_stats(),
        }
        return Response(DatabaseHealthSerializer(body).data)


def _extension_sections() -> dict[str, Any]:
    from audit.monitoring.extensions import metrics_sections

    now = timezone.now()
    return {name: section(now) for name, section in sorted(metrics_sections.items())}


class DatabaseMetricsView(APIView):
    """Query count, latency percentiles (from the execute wrapper's histogram, every process,
    since ``since``), error rate, the same for HTTP requests, connections in use and the size of
    each table of our schemas (staff only). Without Redis the counters are null."""

    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="database_metrics_retrieve",
        summary="Database metrics (staff only)",
        description=__doc__,
        responses={200: DatabaseMetricsSerializer},
    )
    def get(self, request: Request) -> Response:
        snap = store.snapshot() if store.flush() else None
        if snap is not None:
            requests_hist = Histogram.empty(HTTP_BUCKETS)
            for hist in snap.http_latency.values():
                requests_hist.add(hist)
            requests_count = sum(snap.http_requests.values())
            requests_errors = sum(
                n for (_, _, code), n in snap.http_requests.items() if code.startswith("5")
            )
            queries = _counts(snap.db.count, snap.db_errors, snap.db)
            requests = _counts(requests_count, requests_errors, requests_hist)
        else:
            queries = requests = _counts(None, None, None)
        body = {
            "since": snap.since if snap else None,
            "counters_available": snap is not None,
            "queries": queries,
            "requests": requests,
            "connections": selectors.connection_stats(),
            "tables": [vars(t) for t in selectors.table_sizes()],
            "extensions": _extension_sections(),
        }
        return Response(DatabaseMetricsSerializer(body).data)


def _option(options: dict[str, Any], name: str) -> Any:
    value = options.get(name)
    return None if value in (None, "") else value


class DatabaseConnectionInfoView(APIView):
    """Where and how this process connects to PostgreSQL. Built from named fields only: the
    password (and any other secret in the URL or its options) never appears (staff only)."""

    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="database_connection_info_retrieve",
        summary="Database connection info, without the password (staff only)",
        description=__doc__,
        responses={200: ConnectionInfoSerializer},
    )
    def get(self, request: Request) -> Response:
        connection = connections[DEFAULT_DB_ALIAS]
        config = connection.settings_dict
        options: dict[str, Any] = config.get("OPTIONS", {})
        pool = options.get("pool")
        pool_options = pool if isinstance(pool, dict) else {}
        server = selectors.server_info()
        port = config.get("PORT")
        timeout = _option(options, "connect_timeout")
        body = {
            "host": config.get("HOST") or None,
            "port": int(port) if port else None,
            "database": server.database,
            "user": server.user,
            "server_version": server.version,
            "ssl": server.ssl,
            "sslmode": _option(options, "sslmode"),
            "connect_timeout": int(timeout) if timeout is not None else None,
            "conn_max_age": config.get("CONN_MAX_AGE"),
            "conn_health_checks": bool(config.get("CONN_HEALTH_CHECKS")),
            "pool": {
                "enabled": bool(pool),
                "min_size": pool_options.get("min_size"),
                "max_size": pool_options.get("max_size"),
            },
            "server_side_cursors": not config.get("DISABLE_SERVER_SIDE_CURSORS", False),
            "pg_stat_statements": server.pg_stat_statements,
            "connections": selectors.connection_stats(),
        }
        return Response(ConnectionInfoSerializer(body).data)


class DatabaseOptimizeView(APIView):
    """Refresh the materialized views, then VACUUM (ANALYZE) every table and view of our
    schemas, one by one, outside any transaction; a table locked by another session for over
    5 s is skipped and said so. Answers each step with its time; records a system event
    (``database_optimize``). 409 while another run is under way (superusers only)."""

    permission_classes = [IsSuperuser]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # VACUUM cannot run in a transaction: never wrapped in ATOMIC_REQUESTS.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    @extend_schema(
        operation_id="database_optimize",
        summary="VACUUM ANALYZE and refresh of the materialized views (superusers only)",
        description=__doc__,
        request=None,
        responses={200: OptimizeSerializer},
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)  # noqa: S101 (IsSuperuser)
        try:
            report = database_optimize(user=request.user)
        except OptimizeBusy as exc:
            return Response({"error": "busy", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(OptimizeSerializer(report.as_json()).data)
