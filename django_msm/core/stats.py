"""Statistics: msm's counters and timings, per process, thread-safe.

Counters are plain integers behind one lock; timings and sizes go into fixed logarithmic buckets,
so percentiles cost O(buckets) and memory stays flat however long the process runs. They sit on
every request's path, so they are kept cheap: an uncontended lock and a dict update when on, one
attribute test when off (ENABLE_STATISTICS=False), and a timer that is a plain object rather
than a generator-based context manager (a third of the cost).
"""

from __future__ import annotations

import bisect
import threading
import time
from types import TracebackType
from typing import Any

# Bucket upper bounds: 1, 2, 5 × 10^k from 1e-6 to 1e7 (seconds for timings, bytes for sizes).
BUCKETS = tuple(m * 10.0**e for e in range(-6, 8) for m in (1, 2, 5))


class Histogram:
    """Counts of observations per bucket; percentiles are bucket upper bounds."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += 1
        self.sum += value

    def percentile(self, fraction: float) -> float | None:
        if not self.total:
            return None
        rank = fraction * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return BUCKETS[index] if index < len(BUCKETS) else float("inf")
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.total,
            "sum": self.sum,
            "p50": self.percentile(0.50),
            "p95": self.percentile(0.95),
            "p99": self.percentile(0.99),
        }


class Statistics:
    """One process's figures. ``incr``/``observe``/``timer`` are safe from any thread."""

    def __init__(self) -> None:
        self.enabled = True  # ENABLE_STATISTICS; set when the node registry is built
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._histograms: dict[str, Histogram] = {}

    def incr(self, name: str, amount: int = 1) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + amount

    def observe(self, name: str, value: float) -> None:
        if not self.enabled:
            return
        with self._lock:
            histogram = self._histograms.get(name)
            if histogram is None:
                histogram = self._histograms[name] = Histogram()
            histogram.observe(value)

    def timer(self, name: str) -> Timer | NullTimer:
        """``with statistics.timer("load"):`` observes the duration of the block (monotonic
        clock), also when it raises; nothing at all when statistics are off."""
        return Timer(self, name) if self.enabled else NULL_TIMER

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(self._counters),
                "timings": {name: h.summary() for name, h in self._histograms.items()},
            }

    def export(self) -> tuple[dict[str, int], dict[str, tuple[int, float, tuple[int, ...]]]]:
        """Counters and raw histogram buckets in one consistent cut (these sum across
        processes; percentiles do not)."""
        with self._lock:
            return dict(self._counters), {
                name: (h.total, h.sum, tuple(h.counts)) for name, h in self._histograms.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()
            self._histograms.clear()


class Timer:
    """Times one block for ``Statistics.timer``."""

    __slots__ = ("stats", "name", "start")

    def __init__(self, stats: Statistics, name: str):
        self.stats = stats
        self.name = name

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stats.observe(self.name, time.monotonic() - self.start)


class NullTimer:
    """The timer when statistics are off: enters and leaves, records nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


NULL_TIMER = NullTimer()

# Process-global on purpose: every request of the process adds to the same figures, and the
# object guards itself with its own lock.
statistics = Statistics()
