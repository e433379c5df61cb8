"""``python -m bench.run --profile SHAPE --engine NAME``: where one engine's request time goes.

Profiles ``count`` full requests of one shape (after a warm-up) and prints the functions with
the most time of their own, the most cumulative time, and django_msm's own functions.
"""

from __future__ import annotations

import cProfile
import pstats
from typing import TYPE_CHECKING

from . import app
from .engines import Switch, build_engines
from .measure import EngineClients

if TYPE_CHECKING:
    from .run import Servers

TOP = 25


def profile(engine: str, shape: str, count: int, servers: Servers, switch: Switch,
            size: int | None = None) -> None:
    engines = build_engines([n.spec for n in servers.memcached], [n.spec for n in servers.redis])
    if engine not in engines:
        raise SystemExit(f"unknown engine {engine!r}; choose from {', '.join(sorted(engines))}")
    clients = EngineClients(engines[engine], switch)
    url = app.SHAPES[shape]
    clients.run(url, max(1, count // 5), size)
    profiler = cProfile.Profile()
    profiler.enable()
    clients.run(url, count, size)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"{engine} / {shape}: {count} requests, session size {size or 'default'}")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    print("django_msm's own functions, by cumulative time:")
    stats.sort_stats("cumulative").print_stats("django_msm", TOP)
