"""Histogram bucket bounds (seconds) and percentiles from bucket counts.

A histogram is kept as counts per bucket (not cumulative), plus the sum and the count: what
Prometheus exposes as ``_bucket{le=...}`` (cumulated when rendered), ``_sum`` and ``_count``.
"""

from bisect import bisect_left
from collections.abc import Sequence

# HTTP requests: a single-trade POST takes milliseconds, a dashboard query up to seconds.
HTTP_BUCKETS: tuple[float, ...] = (
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Database queries: mostly well under a millisecond on a warm index.
DB_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def bucket_index(bounds: Sequence[float], seconds: float) -> int:
    """The index of the first bucket whose upper bound (``le``) holds ``seconds``;
    ``len(bounds)`` is the +Inf bucket."""
    return bisect_left(bounds, seconds)


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The ``q`` quantile (0..1) of the observations counted per bucket (``counts`` has one more
    item than ``bounds``: the +Inf bucket), by linear interpolation inside the bucket that holds
    it, as Prometheus' histogram_quantile does. None without observations; an observation in
    the +Inf bucket counts as the largest finite bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i == len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]
