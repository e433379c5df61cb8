"""The other tables of the report: Redis, node count, session size, threads and the floor."""

from __future__ import annotations

import statistics

from .engines import NODE_COUNTS, node_engine
from .phases import SIZED, SIZES, THREAD_COUNTS, THREADED
from .report import SHAPES, TARGETS, ratio_cells, target_cells
from .results import Results

# Columns of the size and thread tables: (heading, engine, the engine it is compared with).
PAIRS = (("msm/django", "msm", "django"), ("sticky/django", "msm-sticky", "django"),
         ("msm-redis/django-redis", "msm-redis", "django-redis"))


def size_name(size: int) -> str:
    return f"{size // 1024} KB"


def redis(results: Results) -> list[str]:
    lines = [
        "Redis: django_msm on 2 redis-server nodes vs django-redis's RedisCache (ShardClient over",
        "the same 2 processes) with Django's cache session engine; targets are issue 2's, for",
        "reference",
        "shape     django-redis µs  msm µs  msm/django-redis (IQR)  target  verdict  by mean"
        "  sticky µs  sticky/django-redis  local loads/req",
    ]
    for shape, target in TARGETS.items():
        theirs, mine = results.median("django-redis", shape), results.median("msm-redis", shape)
        cells = target_cells(results, shape, "msm-redis", "django-redis", target)
        stuck = results.median("msm-redis-sticky", shape)
        stuck_ratio = statistics.median(results.ratios(shape, "msm-redis-sticky", "django-redis"))
        local = results.stat_per_request("msm-redis-sticky", shape, "loads_local")
        lines.append(f"{shape:<8}  {theirs:15.1f}  {mine:6.1f}  {cells}  {stuck:9.1f}"
                     f"  {stuck_ratio:18.2f}×  {local:15.2f}")
    noop = [results.median(name, "baseline") for name in ("django-redis", "msm-redis")]
    lines.append(f"no-op     {noop[0]:15.1f}  {noop[1]:6.1f}")
    lines += ["", "Redis commands per request (INFO commandstats over both nodes, which also",
              "counts commands run inside scripts: the sticky version check is evalsha + its GET",
              "on the server, no payload sent; connect = connections accepted):"]
    for shape in SHAPES:
        for engine in ("django-redis", "msm-redis", "msm-redis-sticky"):
            ops = results.ops_per_request(engine, shape)
            text = ", ".join(f"{name} {value:.1f}" for name, value in sorted(ops.items())
                             if value >= 0.05)
            lines.append(f"{shape:<8}  {engine:<16}  {text or '–'}")
    return lines


def nodes(results: Results) -> list[str]:
    lines = [
        "Node count: 2, 4, 8 memcached nodes; Django's engine (PyMemcacheCache) over the same",
        "nodes  shape     django µs  msm µs  msm/django (IQR)",
    ]
    for count in NODE_COUNTS:
        django, msm = node_engine("django", count), node_engine("msm", count)
        for shape in SHAPES:
            lines.append(
                f"{count:5d}  {shape:<8}  {results.median(django, shape):9.1f}  "
                f"{results.median(msm, shape):6.1f}  {ratio_cells(results, shape, msm, django)}"
            )
    return lines


def sizes(results: Results) -> list[str]:
    lines = [
        "Session size: about 1 KB to 512 KB of JSON (an incompressible base64 attribute);",
        "median request µs; raw get = the floor's get of a value of that size (open connection)",
        "size    shape   " + "".join(f"{name:>13}" for name in SIZED)
        + "".join(f"{heading:>23}" for heading, _, _ in PAIRS)
        + "  memcached get  redis get",
    ]
    for size in SIZES:
        for shape in ("read", "modify"):
            label = f"{shape}@{size}"
            times = "".join(f"{results.median(name, label):13.1f}" for name in SIZED)
            ratios = "".join(
                f"{statistics.median(results.ratios(label, mine, theirs)):22.2f}×"
                for _, mine, theirs in PAIRS
            )
            floor = (results.median("floor-memcached", f"get@{size}"),
                     results.median("floor-redis", f"get@{size}"))
            lines.append(f"{size_name(size):<6}  {shape:<6}  {times}{ratios}"
                         f"  {floor[0]:13.1f}  {floor[1]:9.1f}")
    return lines


def threads(results: Results) -> list[str]:
    lines = [
        "Throughput: requests/s of N threads in one process (one session each), median over",
        "rounds; ratios > 1 mean django_msm serves more",
        "shape   threads" + "".join(f"{name:>13}" for name in THREADED)
        + "".join(f"{heading:>23}" for heading, _, _ in PAIRS),
    ]
    for shape in ("read", "modify"):
        for count in THREAD_COUNTS:
            label = f"{shape}@{count}"
            rates = "".join(f"{results.median(name, label):13.0f}" for name in THREADED)
            ratios = "".join(
                f"{statistics.median(results.ratios(label, mine, theirs)):22.2f}×"
                for _, mine, theirs in PAIRS
            )
            lines.append(f"{shape:<6}  {count:7d}{rates}{ratios}")
    return lines


def floor(main: Results | None, redis_results: Results | None) -> list[str]:
    """Raw round trips with the default session content, from the phases that measured them."""
    lines = ["Floor: raw client round trips on node 1 with an open connection, the default "
             "session content"]
    for results, kind, client in ((main, "memcached", "pymemcache"),
                                  (redis_results, "redis", "redis-py")):
        if results is not None and results.has(f"floor-{kind}", "get"):
            get = results.median(f"floor-{kind}", "get")
            put = results.median(f"floor-{kind}", "set")
            lines.append(f"  {kind:<9} ({client}): get {get:.1f} µs, set {put:.1f} µs")
    return lines
