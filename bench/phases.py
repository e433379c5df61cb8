"""The phases of ``make bench``: which engines meet, on which requests, how many times.

Within a phase every round measures every engine on every cell (request shape, session size)
back to back, alternating the engines' order from round to round, so each ratio compares
batches taken moments apart. Phases are separate so that one can be run alone while developing
(``--only``); the comparisons that matter are always within one phase.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django_msm.core.stats import statistics

from . import app
from .engines import NODE_COUNTS, node_engine
from .measure import EngineClients, Floor, MemcachedCounters, RedisCounters
from .results import Results

MAIN = ("django", "django-kept", "msm", "msm-mw", "msm-sticky", "msm-locked")
REDIS = ("django-redis", "msm-redis", "msm-redis-sticky")
SIZED = ("django", "msm", "msm-sticky", "django-redis", "msm-redis")
THREADED = SIZED
LABELS = ("baseline", *app.SHAPES)
SIZES = (1024, 8 * 1024, 64 * 1024, 512 * 1024)
THREAD_COUNTS = (1, 4)


@dataclass(frozen=True)
class Plan:
    """Rounds and batch sizes of each phase; ``quick`` divides them for development."""

    rounds: int = 20
    count: int = 100
    redis_rounds: int = 20
    node_rounds: int = 10
    node_count: int = 100
    size_rounds: int = 10
    size_counts: tuple[int, ...] = (100, 60, 30, 10)  # per SIZES entry
    thread_rounds: int = 6
    per_thread: int = 100
    engine_rounds: int = 30  # the engine section (store called directly, bench/engine_section)
    engine_count: int = 300  # operations per batch on a 1 KB session
    engine_big_count: int = 60  # on a 64 KB session


QUICK = Plan(rounds=5, count=30, redis_rounds=5, node_rounds=3, node_count=30, size_rounds=3,
             size_counts=(20, 15, 8, 3), thread_rounds=2, per_thread=20, engine_rounds=8,
             engine_count=80, engine_big_count=20)


@dataclass(frozen=True)
class Cell:
    label: str
    url: str
    count: int
    size: int | None = None


def _stats_delta(before: tuple, after: tuple) -> tuple[dict[str, float], dict[str, list[int]]]:
    """django_msm's statistics gained between two ``statistics.export()`` cuts."""
    counters = {name: value - before[0].get(name, 0) for name, value in after[0].items()}
    histograms = {}
    for name, (total, added, counts) in after[1].items():
        old_total, old_sum, old_counts = before[1].get(name, (0, 0.0, (0,) * len(counts)))
        if total != old_total:
            counters[f"{name}:count"] = total - old_total
            counters[f"{name}:sum"] = added - old_sum
            histograms[name] = [new - old for new, old in zip(counts, old_counts, strict=True)]
    return counters, histograms


def settle() -> None:
    """Collect, then freeze what survives (Django, the clients, the servers' data) out of the
    collector's sight, so the collection before each batch costs microseconds, not tens of
    milliseconds, and collections inside a batch scan only that batch's garbage."""
    gc.collect()
    gc.freeze()


class Bench:
    """The engines' clients, the servers' counters and the floors, shared by every phase."""

    def __init__(self, clients: dict[str, EngineClients], memcached_ports: Sequence[int],
                 redis_ports: Sequence[int]):
        self.clients = clients
        self.counters = {"memcached": MemcachedCounters(memcached_ports),
                         "redis": RedisCounters(redis_ports)}
        self.floors = {"memcached": Floor("memcached", memcached_ports[0]),
                       "redis": Floor("redis", redis_ports[0])}

    def close(self) -> None:
        for part in (*self.counters.values(), *self.floors.values()):
            part.close()

    def batch(self, results: Results, name: str, cell: Cell, count_ops: bool) -> None:
        clients = self.clients[name]
        counters, nodes = self.counters[clients.engine.server], clients.engine.nodes
        gc.collect()  # cheap: settle() froze everything older than this phase
        before = counters.read(nodes) if count_ops else None
        stats_before = statistics.export()
        elapsed = clients.run(cell.url, cell.count, cell.size)
        stats_after = statistics.export()
        results.add_batch(name, cell.label, elapsed)
        results.add_stats(name, cell.label, *_stats_delta(stats_before, stats_after))
        if before is not None:
            per_request = counters.per_request(before, counters.read(nodes), cell.count)
            results.add_ops(name, cell.label, per_request)

    def interleave(self, engines: Sequence[str], cells: Sequence[Cell], rounds: int,
                   count_ops: bool = True,
                   each_round: Callable[[Results], None] | None = None) -> Results:
        results = Results(rounds, cells[0].count, counts={c.label: c.count for c in cells})
        for name in engines:  # warm-up: imports, pools, first connections, local copies
            for cell in cells:
                self.clients[name].run(cell.url, max(1, cell.count // 5), cell.size)
        settle()
        for number in range(rounds):
            order = engines if number % 2 == 0 else engines[::-1]
            for cell in cells:
                for name in order:
                    self.batch(results, name, cell, count_ops)
            if each_round is not None:
                each_round(results)
        return results

    def floor(self, kind: str, results: Results, value: bytes, count: int, suffix: str = ""
              ) -> None:
        gets, sets = self.floors[kind].measure(value, count)
        results.add_batch(f"floor-{kind}", f"get{suffix}", gets)
        results.add_batch(f"floor-{kind}", f"set{suffix}", sets)


def _cells(count: int, labels: Sequence[str] = LABELS) -> list[Cell]:
    return [Cell(label, app.url(label), count) for label in labels]


def _default_value() -> bytes:
    return json.dumps(app.session_content()).encode()


def main_phase(bench: Bench, plan: Plan) -> Results:
    """Memcached, 2 nodes: Django's engine and django_msm non-sticky, sticky and locked."""
    value = _default_value()
    return bench.interleave(
        MAIN, _cells(plan.count), plan.rounds,
        each_round=lambda r: bench.floor("memcached", r, value, plan.count),
    )


def redis_phase(bench: Bench, plan: Plan) -> Results:
    """Redis, 2 nodes: django-redis's cache engine and django_msm on the same servers."""
    value = _default_value()
    return bench.interleave(
        REDIS, _cells(plan.count), plan.redis_rounds,
        each_round=lambda r: bench.floor("redis", r, value, plan.count),
    )


def node_phase(bench: Bench, plan: Plan) -> Results:
    """2, 4 and 8 memcached nodes, Django's engine over the same nodes as django_msm."""
    engines = [node_engine(kind, count) for count in NODE_COUNTS for kind in ("django", "msm")]
    return bench.interleave(engines, _cells(plan.node_count, tuple(app.SHAPES)), plan.node_rounds)


def size_phase(bench: Bench, plan: Plan) -> Results:
    """Read and modify of sessions from 1 KB to 512 KB, with the floor at each size."""
    cells = [
        Cell(f"{shape}@{size}", app.SHAPES[shape], count, size)
        for size, count in zip(SIZES, plan.size_counts, strict=True)
        for shape in ("read", "modify")
    ]

    def floors(results: Results) -> None:
        for size, count in zip(SIZES, plan.size_counts, strict=True):
            value = app.blob(size).encode()
            for kind in ("memcached", "redis"):
                bench.floor(kind, results, value, count, suffix=f"@{size}")

    return bench.interleave(SIZED, cells, plan.size_rounds, count_ops=False, each_round=floors)


def thread_phase(bench: Bench, plan: Plan) -> Results:
    """Requests per second with 1 and 4 threads in one process, each thread on its own session."""
    results = Results(plan.thread_rounds, plan.per_thread)
    for name in THREADED:  # warm-up, and every thread's session created
        bench.clients[name].throughput(app.SHAPES["read"], max(THREAD_COUNTS), 5)
    settle()
    for number in range(plan.thread_rounds):
        order = THREADED if number % 2 == 0 else THREADED[::-1]
        for threads in THREAD_COUNTS:
            for shape in ("read", "modify"):
                for name in order:
                    gc.collect()
                    rate = bench.clients[name].throughput(
                        app.SHAPES[shape], threads, plan.per_thread
                    )
                    results.add_value(name, f"{shape}@{threads}", rate)
    return results
