"""Publish each app process's statistics to the nodes, so ``msm_status`` sees the whole cluster.

Statistics live in each process (``stats.statistics``); an operator wants them per instance and
summed. So every few seconds, at the end of a request (``request_finished``, rate-limited on the
monotonic clock: no background thread), a process writes its figures to every available node:

* ``msm:stats:<prefix><hostname>:<pid>`` — the figures as JSON, expiring after ``PUBLISH_TTL``,
  so a process that stops publishing disappears on its own;
* ``msm:stats:<prefix>index`` — the instance names with their expiry, because memcached cannot
  list keys cheaply. The index is rewritten under a short ``add`` lock (atomic on every store
  kind) only when this instance is missing from it or about to expire.

Histograms travel as bucket counts, not percentiles, so that figures summed over instances keep
exact percentiles.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, SystemClock
from ..core.cluster import Cluster
from ..core.keys import KeyLayout
from ..core.nodes import Node
from ..core.registry import NodeRegistry
from ..core.stats import BUCKETS, Histogram, Statistics, statistics
from ..exceptions import NodeUnavailable

logger = logging.getLogger(__name__)

PUBLISH_INTERVAL = 5.0
PUBLISH_TTL = 30
_LOCK_TTL = 2


@dataclass(frozen=True)
class Timing:
    """One histogram as bucket counts (``stats.BUCKETS`` upper bounds, then overflow)."""

    count: int = 0
    sum: float = 0.0
    buckets: tuple[int, ...] = (0,) * (len(BUCKETS) + 1)

    def summary(self) -> dict[str, Any]:
        histogram = Histogram()
        histogram.counts, histogram.total, histogram.sum = list(self.buckets), self.count, self.sum
        return histogram.summary()

    def __add__(self, other: Timing) -> Timing:
        buckets = tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True))
        return Timing(self.count + other.count, self.sum + other.sum, buckets)


@dataclass(frozen=True)
class Figures:
    """One instance's counters and timings, as published (or the sum over instances)."""

    instance: str
    counters: dict[str, int] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    published_at: float | None = None


def export(stats: Statistics) -> tuple[dict[str, int], dict[str, Timing]]:
    """Copy counters and histogram buckets in one consistent cut."""
    counters, histograms = stats.export()
    return counters, {name: Timing(*parts) for name, parts in histograms.items()}


def total(instances: Iterable[Figures]) -> Figures:
    """Sum figures over instances: counters add, histogram buckets add."""
    counters: Counter[str] = Counter()
    timings: dict[str, Timing] = {}
    for figures in instances:
        counters.update(figures.counters)
        for name, timing in figures.timings.items():
            timings[name] = timings.get(name, Timing()) + timing
    return Figures("total", dict(sorted(counters.items())), dict(sorted(timings.items())))


def instance_name() -> str:
    """``hostname:pid``, restricted to characters every store accepts in a key."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:100] or "localhost"
    return f"{host}:{os.getpid()}"


def stats_key(prefix: str, name: str) -> str:
    return KeyLayout(prefix).stats(name)


def _sparse(buckets: tuple[int, ...]) -> dict[int, int]:
    return {index: number for index, number in enumerate(buckets) if number}


def encode(figures: Figures) -> bytes:
    """Serialize figures for publishing: JSON, histograms as non-empty buckets only."""
    timings = {
        name: {"count": t.count, "sum": t.sum, "buckets": _sparse(t.buckets)}
        for name, t in figures.timings.items()
    }
    body = {"instance": figures.instance, "published_at": figures.published_at,
            "counters": figures.counters, "timings": timings}
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> Figures:
    """Parse published figures; raise ValueError (or KeyError/TypeError) for anything else."""
    body = json.loads(data)
    timings = {}
    for name, t in body["timings"].items():
        buckets = [0] * (len(BUCKETS) + 1)
        for index, number in t["buckets"].items():
            buckets[int(index)] = int(number)
        timings[name] = Timing(int(t["count"]), float(t["sum"]), tuple(buckets))
    counters = {str(k): int(v) for k, v in body["counters"].items()}
    return Figures(str(body["instance"]), counters, timings, float(body["published_at"]))


class Publisher:
    """Rate-limited publishing of one process's figures; safe to call from any thread."""

    def __init__(
        self,
        stats: Statistics = statistics,
        interval: float = PUBLISH_INTERVAL,
        ttl: int = PUBLISH_TTL,
        clock: Clock | None = None,
    ):
        self.stats = stats
        self.interval = interval
        self.ttl = ttl
        self.clock = clock or SystemClock()
        self._due = 0.0
        self._lock = threading.Lock()

    def maybe_publish(self, cluster: Cluster | None = None) -> bool:
        """Publish if the interval has passed and no other thread is publishing right now."""
        if self.clock.monotonic() < self._due or not self._lock.acquire(blocking=False):
            return False
        try:
            if self.clock.monotonic() < self._due:
                return False
            self._due = self.clock.monotonic() + self.interval
            self.publish(cluster or _process_cluster())
            return True
        finally:
            self._lock.release()

    def publish(self, cluster: Cluster) -> int:
        """Write this instance's figures to every available node; return how many took them."""
        counters, timings = export(self.stats)
        name = instance_name()
        now = self.clock.time()
        data = encode(Figures(name, counters, timings, now))
        registry, key = cluster.registry, cluster.keys.stats(name)
        written = 0
        for node in registry.nodes:
            try:
                registry.call(node, lambda store: store.set(key, data, self.ttl))
                self._register(cluster, node, name, now)
            except NodeUnavailable as exc:
                logger.debug("statistics not published to node %s: %s", node.label, exc)
                continue
            written += 1
        return written

    def _register(self, cluster: Cluster, node: Node, name: str, now: float) -> None:
        """Make sure the node's index lists this instance; rewrite it under an ``add`` lock."""
        registry, prefix = cluster.registry, cluster.config.storage_prefix
        index_key, lock_key = stats_key(prefix, "index"), stats_key(prefix, "index.lock")
        index = _read_index(registry.call(node, lambda store: store.get(index_key)))
        if index.get(name, 0) > now + self.ttl / 2:
            return
        if not registry.call(node, lambda store: store.add(lock_key, b"1", _LOCK_TTL)):
            return  # someone else is rewriting it; this instance tries again next time
        try:
            index = _read_index(registry.call(node, lambda store: store.get(index_key)))
            index = {n: exp for n, exp in index.items() if exp > now}
            index[name] = now + self.ttl
            data = json.dumps(index, separators=(",", ":")).encode()
            registry.call(node, lambda store: store.set(index_key, data, self.ttl))
        finally:
            registry.call(node, lambda store: store.delete(lock_key))


def _read_index(data: bytes | None) -> dict[str, float]:
    if data is None:
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(data).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def read_published(cluster: Cluster, nodes: Iterable[Node], now: float) -> list[Figures]:
    """Return the newest published figures of every live instance found on ``nodes``.

    A node that fails once is not asked again, so a node that hangs costs one timeout.
    """
    registry, prefix = cluster.registry, cluster.config.storage_prefix
    live = list(nodes)
    names: set[str] = set()
    for node in list(live):
        data = _get(registry, node, stats_key(prefix, "index"), live)
        names.update(name for name, expires in _read_index(data).items() if expires > now)
    found: dict[str, Figures] = {}
    for name in sorted(names):
        for node in list(live):
            figures = _decode_figures(_get(registry, node, stats_key(prefix, name), live), node)
            newest = found.get(name)
            if figures is not None and (
                newest is None or (figures.published_at or 0) > (newest.published_at or 0)
            ):
                found[name] = figures
    return [found[name] for name in sorted(found)]


def _get(registry: NodeRegistry, node: Node, key: str, live: list[Node]) -> bytes | None:
    """Read straight from the store (no quarantine bookkeeping); drop a failing node."""
    try:
        return registry.stores[node].get(key)
    except NodeUnavailable:
        live.remove(node)
        return None


def _decode_figures(data: bytes | None, node: Node) -> Figures | None:
    if data is None:
        return None
    try:
        return decode(data)
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("unreadable statistics on node %s", node.label)
        return None


publisher = Publisher()


def _after_fork() -> None:
    # A worker forked while another thread was publishing would inherit a held lock and never
    # publish; its figures are its own from here on (the pid in its name changed too).
    publisher._lock = threading.Lock()
    publisher._due = 0.0


os.register_at_fork(after_in_child=_after_fork)


def on_request_finished(sender: object = None, **kwargs: object) -> None:
    """``request_finished`` receiver: publish when due; never let a failure reach the request."""
    if not statistics.enabled:
        return
    try:
        publisher.maybe_publish()
    except Exception:  # statistics must never break a response
        logger.exception("publishing statistics failed")


def connect() -> None:
    """Publish at the end of requests (call from ``AppConfig.ready`` when statistics are on)."""
    from django.core.signals import request_finished

    request_finished.connect(on_request_finished, dispatch_uid="django_msm.ops.publish")


def disconnect() -> None:
    """Stop publishing at the end of requests."""
    from django.core.signals import request_finished

    request_finished.disconnect(dispatch_uid="django_msm.ops.publish")


def _process_cluster() -> Cluster:
    from ..runtime import get_cluster  # ops sit beside the runtime; resolved when publishing

    return get_cluster()
