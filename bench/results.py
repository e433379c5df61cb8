"""What a phase of the benchmark collects: per-batch times, server commands, msm statistics.

Ratios are the headline: each round measures the engines back to back, the ratio is taken per
round (so a noisy moment hits both sides of it) and the median of those ratios is reported.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django_msm.core.stats import BUCKETS

Key = tuple[str, str]  # (engine, label)


@dataclass
class Results:
    """Per batch, by (engine, label) in round order: the median and the mean request, in µs.

    The median of a batch is the headline: a request that lost the CPU to another process on
    this shared machine does not move it. The mean, which also carries such requests and the
    garbage collector, is shown beside it. ``values`` holds figures that are not times
    (requests per second); ``stats`` django_msm's own counters and histogram buckets.
    """

    rounds: int
    count: int
    times: dict[Key, list[float]] = field(default_factory=lambda: defaultdict(list))
    means: dict[Key, list[float]] = field(default_factory=lambda: defaultdict(list))
    ops: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    stats: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    buckets: dict[Key, dict[str, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    counts: dict[str, int] = field(default_factory=dict)  # requests per batch, by label

    def add_batch(self, engine: str, label: str, elapsed_ns: list[int]) -> None:
        self.times[engine, label].append(statistics.median(elapsed_ns) / 1000)
        self.means[engine, label].append(statistics.fmean(elapsed_ns) / 1000)

    def add_value(self, engine: str, label: str, value: float) -> None:
        self.times[engine, label].append(value)
        self.means[engine, label].append(value)

    def add_ops(self, engine: str, label: str, per_request: dict[str, float]) -> None:
        self.ops[engine, label].update(per_request)

    def add_stats(self, engine: str, label: str, counters: dict[str, int],
                  histograms: dict[str, list[int]]) -> None:
        self.stats[engine, label].update(counters)
        mine = self.buckets[engine, label]
        for name, counts in histograms.items():
            total = mine.setdefault(name, [0] * len(counts))
            mine[name] = [a + b for a, b in zip(total, counts, strict=True)]

    def absorb(self, other: Results) -> None:
        """Take in the figures of another interleaving of the same rounds (other engines or
        labels), so that one section's sub-phases report as one."""
        for mine, theirs in ((self.times, other.times), (self.means, other.means)):
            for key, values in theirs.items():
                mine[key].extend(values)
        for key, counts in other.ops.items():
            self.ops[key].update(counts)
        for key, counts in other.stats.items():
            self.stats[key].update(counts)
        self.buckets.update(other.buckets)
        self.counts.update(other.counts)

    def has(self, engine: str, label: str) -> bool:
        return bool(self.times.get((engine, label)))

    def median(self, engine: str, label: str) -> float:
        return statistics.median(self.times[engine, label])

    def ratios(self, label: str, engine: str = "msm", against: str = "django",
               share: bool = False, mean: bool = False) -> list[float]:
        """``engine`` / ``against`` per round; with ``share``, of the request minus the no-op."""
        times = self.means if mean else self.times
        mine, other = times[engine, label], times[against, label]
        if share:
            mine, other = self.shares(engine, label), self.shares(against, label)
        return [m / o for m, o in zip(mine, other, strict=True) if o > 0]

    def differences(self, label: str, engine: str, against: str) -> list[float]:
        """``engine`` minus ``against`` per round, in µs."""
        pairs = zip(self.times[engine, label], self.times[against, label], strict=True)
        return [mine - other for mine, other in pairs]

    def shares(self, engine: str, label: str) -> list[float]:
        """Per round: a request of ``label`` minus the no-op request of the same engine."""
        pairs = zip(self.times[engine, label], self.times[engine, "baseline"], strict=True)
        return [request - noop for request, noop in pairs]

    def ops_per_request(self, engine: str, label: str) -> dict[str, float]:
        total = self.ops[engine, label]
        return {name: value / self.rounds for name, value in total.items()}

    def stat_per_request(self, engine: str, label: str, name: str) -> float:
        return self.stats[engine, label][name] / (self.rounds * self.count)

    def percentile(self, engine: str, label: str, name: str, fraction: float) -> float | None:
        """A percentile of one of django_msm's histograms: the bucket's upper bound (s)."""
        counts = self.buckets[engine, label].get(name)
        if not counts or not sum(counts):
            return None
        rank, seen = fraction * sum(counts), 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= rank:
                return BUCKETS[index] if index < len(BUCKETS) else float("inf")
        return None


def summary(ratios: list[float]) -> tuple[float, float, float]:
    """Median and interquartile range of per-round ratios."""
    ratio = statistics.median(ratios)
    if len(ratios) < 2:
        return ratio, ratio, ratio
    low, _, high = statistics.quantiles(ratios, n=4)
    return ratio, low, high


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"
