"""The bench's figures: percentiles, the ratio to raw SQL, the targets, a table and JSON.

Latencies are reported as they are. For batches, each POST gives a rate (rows / seconds);
p50 is the median rate and p95 the rate at the 95th-percentile latency (the slow end).
The ratio is API cost over the baseline's cost at p50 (8.0: the API takes eight times as long as
the database needs for the same rows), or at the operation's ``ratio_metric``: the PgBouncer
figure is its p95 over the direct POST's p95.
"""

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Target:
    metric: str  # "p50" or "p95"
    comparison: str  # "<", ">=", ...
    value: float

    def met(self, figures: dict[str, float]) -> bool:
        return bool(_COMPARE[self.comparison](figures[self.metric], self.value))


@dataclass
class Operation:
    """One measured operation: the API's samples and the raw-SQL baseline's, in seconds."""

    name: str
    label: str
    rows_per_call: int  # 1 for a latency, the batch size for a rate
    unit: str  # "ms" for a latency, "<rows>/s" for a rate
    target: Target | None  # the goal another issue set, if any
    baseline_label: str
    # Issue 19's goal: our time over the raw baseline's at p50, at most this (a rate of at least
    # 0.6x the raw one is a ratio of at most 1 / 0.6).
    max_ratio: float | None = None
    ratio_metric: str = "p50"  # where the ratio is taken: "p50" or "p95" of both sides
    seconds: list[float] = field(default_factory=list)
    baseline_seconds: list[float] = field(default_factory=list)
    available: bool = True
    note: str = ""

    @property
    def is_rate(self) -> bool:
        return self.unit != "ms"

    def _figures(self, seconds: list[float]) -> dict[str, float]:
        figures = {q: percentile(seconds, n) for q, n in (("p50", 50), ("p95", 95), ("p99", 99))}
        if self.is_rate:
            return {q: self.rows_per_call / s for q, s in figures.items()}
        return {q: s * 1000 for q, s in figures.items()}

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "operation": self.label,
            "unit": self.unit,
            "rows_per_call": self.rows_per_call,
            "available": self.available,
            "samples": len(self.seconds),
            "target": None
            if self.target is None
            else {
                "metric": self.target.metric,
                "comparison": self.target.comparison,
                "value": self.target.value,
                "text": self.target_text,
            },
            "max_ratio": self.max_ratio,
            "ratio_metric": self.ratio_metric,
        }
        if self.note:
            body["note"] = self.note
        baseline: dict[str, Any] = {"operation": self.baseline_label, "unit": self.unit}
        if self.baseline_seconds:
            baseline.update(self._figures(self.baseline_seconds))
            baseline["samples"] = len(self.baseline_seconds)
        body["baseline"] = baseline
        if not self.available or not self.seconds:
            body.update({"p50": None, "p95": None, "p99": None, "ratio": None, "met": None})
            return body
        figures = self._figures(self.seconds)
        body.update(figures)
        at = float(self.ratio_metric.lstrip("p"))
        body["ratio"] = (
            percentile(self.seconds, at) / percentile(self.baseline_seconds, at)
            if self.baseline_seconds
            else None
        )
        checks = [] if self.target is None else [self.target.met(figures)]
        if self.max_ratio is not None and body["ratio"] is not None:
            checks.append(body["ratio"] <= self.max_ratio)
        body["met"] = all(checks) if checks else None
        return body

    @property
    def target_text(self) -> str:
        parts = []
        if self.target is not None:
            value = f"{self.target.value:,.0f}" if self.is_rate else f"{self.target.value:g}"
            parts.append(f"{self.target.metric} {self.target.comparison} {value} {self.unit}")
        if self.max_ratio is not None:
            at = "" if self.ratio_metric == "p50" else f"{self.ratio_metric} "
            parts.append(f"{at}ratio <= {self.max_ratio:.2f}x")
        return "; ".join(parts) or "-"


@dataclass
class BenchReport:
    quick: bool
    database: str
    environment: dict[str, Any]
    operations: list[Operation]
    database_dropped: bool = False
    dataset: dict[str, Any] | None = None  # what the reads ran against

    def as_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "database": self.database,
            "database_dropped": self.database_dropped,
            "dataset": self.dataset,
            "environment": self.environment,
            "operations": [op.as_json() for op in self.operations],
        }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def render_table(report: BenchReport) -> str:
    header = ("operation", "p50", "p95", "unit", "raw-SQL baseline", "ratio", "target", "met?")
    lines: list[tuple[str, ...]] = [header]
    for op in report.operations:
        data = op.as_json()
        base = data["baseline"]
        at = "" if op.ratio_metric == "p50" else f" ({op.ratio_metric})"
        baseline = (
            f"{base['operation']}: {_number(base.get(op.ratio_metric), op.unit)}{at}"
            if op.baseline_label
            else "-"
        )
        if not op.available:
            lines.append(
                (op.label, "-", "-", op.unit, baseline, "-", op.target_text, "not available")
            )
            continue
        ratio = "-" if data["ratio"] is None else f"{data['ratio']:.1f}x"
        lines.append(
            (
                op.label,
                _number(data["p50"], op.unit),
                _number(data["p95"], op.unit),
                op.unit,
                baseline,
                ratio,
                op.target_text,
                "-" if data["met"] is None else "yes" if data["met"] else "NO",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    notes = [""]
    if report.dataset:
        data = report.dataset
        sizes = ", ".join(
            f"{data[k]:,} {k}" for k in ("bots", "trades", "candles", "symbols") if k in data
        )
        notes.append(
            f"Data set: scale {data.get('scale', 'custom')} ({sizes}; seed {data.get('seed')}, "
            f"until {data.get('until')}); reads of {data.get('bot_id')} "
            f"({data.get('bot_trades')} trades) and {data.get('symbol')}."
        )
    notes += [
        "Baselines are p50 of raw psycopg in the same run (ingestion: on the scratch database; "
        "reads: the same SQL on the data set); ratio = our time / raw time at p50 (at p95 where "
        "the target says so).",
        "For batches p50 is the median rate; p95 is the rate at the 95th-percentile latency.",
    ]
    for op in report.operations:
        data = op.as_json()
        if op.available and not op.is_rate and data["p99"] is not None:
            notes.append(f"{op.label}: p99 {data['p99']:.2f} ms over {data['samples']} requests.")
        if op.note:
            notes.append(f"{op.label}: {op.note}")
    return "\n".join(out + notes)
