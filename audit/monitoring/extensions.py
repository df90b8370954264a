"""What apps above audit add to the probes and metrics without audit importing them: each
registers its providers here from its AppConfig.ready (alerts: its outbox backlog, delivery
latency and failures per channel). A provider that raises is logged and left out."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

# name -> check(now) -> {"status": "ok" | "warning", ...}: in /health/ready (warnings only).
readiness_checks: dict[str, Callable[[datetime], dict[str, Any]]] = {}
# name -> section(now) -> JSON: in /api/v1/database/metrics under its name.
metrics_sections: dict[str, Callable[[datetime], dict[str, Any]]] = {}
# name -> samples(now) -> [(family, kind, help, [(labels, value), ...])]: in /metrics.
Sample = tuple[dict[str, str], float]
Family = tuple[str, str, str, list[Sample]]
prometheus_families: dict[str, Callable[[datetime], list[Family]]] = {}
