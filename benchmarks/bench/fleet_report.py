"""The fleet run's figures: per endpoint and overall, the CPU each side spent, the database's
wait events, the client's own load; as a table and as JSON (the same style as report.py)."""

import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import django

from benchmarks.bench.fleet_client import Endpoint
from benchmarks.bench.report import Target, percentile

if TYPE_CHECKING:
    from benchmarks.bench.fleet import FleetOptions

# Issue 19: "100 bots with p99 < 100 ms and 0 errors on this machine".
FLEET_TARGET = Target("p99", "<", 100.0)
# The client counts as saturated past this share of one core, or when its loop wakes late.
CLIENT_CORE_LIMIT = 0.5
CLIENT_LAG_LIMIT_MS = 20.0
ERRORS_LISTED = 20
WINDOW_SECONDS = 10
DASHBOARD_PREFIX = "GET "


@dataclass
class FleetReport:
    options: "FleetOptions"
    database: str
    server_version: str
    endpoints: dict[str, Endpoint]
    timeline: list[tuple[float, float]]
    wall: float
    cpu: dict[str, Any]
    cpu_windows: list[dict[str, float]]
    waits: dict[str, Any]
    loop_lag: list[float]
    connections_opened: int
    workers_seen: int
    gunicorn_log_tail: str = ""
    database_dropped: bool = True

    def _rows(self) -> list[dict[str, Any]]:
        return [self.endpoints[name].figures(self.wall) for name in sorted(self.endpoints)]

    def _total(self, name: str, chosen: list[Endpoint]) -> dict[str, Any]:
        merged = Endpoint(name)
        for endpoint in chosen:
            merged.seconds += endpoint.seconds
            merged.errors += endpoint.errors
        return merged.figures(self.wall)

    def totals(self) -> list[dict[str, Any]]:
        every = list(self.endpoints.values())
        return [
            self._total("bots (every POST)", [e for e in every if e.name.startswith("POST ")]),
            self._total("dashboard (every GET)", [e for e in every if e.name.startswith("GET ")]),
            self._total("overall", every),
        ]

    def client(self) -> dict[str, Any]:
        cores = self.cpu.get("client", {}).get("cores")
        lag_p99 = percentile(self.loop_lag, 99) * 1000 if self.loop_lag else None
        saturated = (cores is not None and cores > CLIENT_CORE_LIMIT) or (
            lag_p99 is not None and lag_p99 > CLIENT_LAG_LIMIT_MS
        )
        return {
            "cores": cores,
            "loop_lag_p99_ms": lag_p99,
            "loop_lag_max_ms": max(self.loop_lag) * 1000 if self.loop_lag else None,
            "connections_max": self.options.connections,
            "connections_opened": self.connections_opened,
            "saturated": saturated,
        }

    def windows(self) -> list[dict[str, Any]]:
        """Every request by the WINDOW_SECONDS it was due in: when the slow ones came."""
        by_window: dict[int, list[float]] = {}
        for due, seconds in self.timeline:
            by_window.setdefault(max(0, int(due // WINDOW_SECONDS)), []).append(seconds)
        return [
            {
                "from_second": n * WINDOW_SECONDS,
                "requests": len(values),
                "p50": percentile(values, 50) * 1000,
                "p99": percentile(values, 99) * 1000,
                "max": max(values) * 1000,
            }
            | (self.cpu_windows[n] if n < len(self.cpu_windows) else {})
            for n, values in sorted(by_window.items())
        ]

    def met(self) -> bool:
        overall = self.totals()[-1]
        return (
            overall["errors"] == 0
            and overall["p99"] is not None
            and FLEET_TARGET.met({"p99": overall["p99"]})
        )

    def errors(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = []
        for endpoint in self.endpoints.values():
            listed += [{"endpoint": endpoint.name, **e} for e in endpoint.errors]
        return listed[:ERRORS_LISTED]

    def as_json(self) -> dict[str, Any]:
        o = self.options
        return {
            "fleet": True,
            "database": self.database,
            "database_dropped": self.database_dropped,
            "environment": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "django": django.get_version(),
                "postgresql": self.server_version,
                "gunicorn_workers": o.gunicorn_workers,
                "gunicorn_workers_seen": self.workers_seen,
                "gunicorn_threads": int(os.environ.get("GUNICORN_THREADS", "1")),
                "load_average_end": [round(x, 2) for x in os.getloadavg()],
            },
            "options": {
                "bots": o.bots,
                "duration_seconds": o.duration,
                "dashboards": o.dashboards,
                "dashboard_every_seconds": o.dashboard_every,
                "heartbeat_every_seconds": o.cadence.heartbeat,
                "activity_every_seconds": o.cadence.activity,
                "balances_and_candles_every_seconds": o.cadence.minute,
                "seed": o.seed,
            },
            "wall_seconds": self.wall,
            "target": f"{FLEET_TARGET.metric} {FLEET_TARGET.comparison} "
            f"{FLEET_TARGET.value:g} ms overall, 0 errors",
            "met": self.met(),
            "endpoints": self._rows(),
            "totals": self.totals(),
            "windows": self.windows(),
            "cpu": self.cpu,
            "pg_activity": self.waits,
            "client": self.client(),
            "errors": self.errors(),
            "gunicorn_log_tail": self.gunicorn_log_tail,
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cores(figure: dict[str, Any]) -> str:
    cores = figure.get("cores")
    if cores is None:
        return "not measured (not on this machine)"
    return f"{figure['cpu_seconds']:.1f} s CPU = {cores:.2f} cores"


def render_fleet(report: FleetReport) -> str:
    data = report.as_json()
    header = ("endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors")
    lines = [header]
    for row in [*data["endpoints"], *data["totals"]]:
        lines.append(
            (
                row["endpoint"],
                f"{row['requests']:,}",
                f"{row['throughput']:.1f}",
                _ms(row["p50"]),
                _ms(row["p95"]),
                _ms(row["p99"]),
                _ms(row["max"]),
                str(row["errors"]),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    out.insert(len(data["endpoints"]) + 2, "-+-".join("-" * w for w in widths))
    env, cpu, client = data["environment"], data["cpu"], data["client"]
    share, own = cpu["database_share"], cpu["database_share_run_backends"]
    out += [
        "",
        f"{report.options.bots} bots, {report.options.dashboards} dashboard client(s), "
        f"{data['wall_seconds']:.1f} s; {env['gunicorn_workers']} gunicorn workers "
        f"x {env['gunicorn_threads']} thread(s); {env['postgresql'].split(' on ')[0]}; "
        f"{env['cpu_count']} CPUs.",
        f"target {data['target']}: {'met' if data['met'] else 'NOT met'}.",
        f"CPU over the run: PostgreSQL {_cores(cpu['postgresql'])} (the server's every "
        f"process; the run's own backends: {_cores(cpu['postgresql_run_backends'])}); gunicorn "
        f"{_cores(cpu['gunicorn'])}; client {_cores(cpu['client'])}; the machine "
        f"{cpu['machine']['busy_share']:.0%} busy (all its processes).",
        "database's share of the run's CPU (PostgreSQL / PostgreSQL + gunicorn + client): "
        + ("-" if share is None else f"{share:.0%}")
        + " (the run's own backends alone: "
        + ("-" if own is None else f"{own:.0%}")
        + ")",
        f"client: loop lag p99 {_ms(client['loop_lag_p99_ms'])} ms, "
        f"{client['connections_opened']:,} connections opened (at most "
        f"{client['connections_max']} at once); "
        + ("SATURATED: the figures are the client's" if client["saturated"] else "not saturated"),
        "pg_stat_activity (average backends per sample): "
        + ", ".join(f"{k} {v}" for k, v in data["pg_activity"]["sessions"].items())
        + "; active by wait: "
        + (", ".join(f"{k} {v}" for k, v in data["pg_activity"]["active_waits"].items()) or "-"),
    ]
    out.append(
        f"p99 ms by {WINDOW_SECONDS} s window: "
        + " ".join(f"{w['p99']:.0f}" for w in data["windows"])
        + "; cores busy, the run's / the machine's: "
        + " ".join(
            f"{w['run_cores']:.2f}/{w['machine_cores']:.2f}"
            for w in data["windows"]
            if "run_cores" in w
        )
    )
    for error in data["errors"]:
        out.append(f"error: {error['endpoint']} {error['status']} {error['path']}: {error['body']}")
    return "\n".join(out)
