"""``python -m bench.run --profile SHAPE --engine NAME``: where one engine's request time goes.

Profiles ``count`` full requests of one shape (after a warm-up) and prints the functions with
the most time of their own, the most cumulative time, and django_msm's own functions.
``python -m bench.engine --profile SHAPE`` does the same for the store called directly.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import app
from .engines import Switch, build_engines
from .measure import EngineClients

if TYPE_CHECKING:
    from .run import Servers

TOP = 25


def report(title: str, run: Callable[[int], object], count: int) -> None:
    """Warm up with a fifth of ``count``, then profile ``run(count)`` and print its hot spots:
    own time, cumulative time, and django_msm's functions by cumulative time (printed last, as
    the part to read first)."""
    run(max(1, count // 5))
    profiler = cProfile.Profile()
    profiler.enable()
    run(count)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(title)
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    print("django_msm's own functions, by cumulative time:")
    stats.sort_stats("cumulative").print_stats("django_msm", TOP)


def profile(engine: str, shape: str, count: int, servers: Servers, switch: Switch,
            size: int | None = None) -> None:
    engines = build_engines([n.spec for n in servers.memcached], [n.spec for n in servers.redis])
    if engine not in engines:
        raise SystemExit(f"unknown engine {engine!r}; choose from {', '.join(sorted(engines))}")
    clients = EngineClients(engines[engine], switch)
    url = app.SHAPES[shape]
    report(f"{engine} / {shape}: {count} requests, session size {size or 'default'}",
           lambda n: clients.run(url, n, size), count)
