"""``python -m bench.run --profile SHAPE``: where one engine's request time goes.

Profiles ``count`` full requests of one shape (after a warm-up) and prints the functions with
the most time of their own, the most cumulative time, and django_msm's own functions.
"""

from __future__ import annotations

import cProfile
import pstats

from . import app
from .measure import EngineClients

TOP = 25


def profile(engine: str, shape: str, count: int) -> None:
    clients = EngineClients(engine)
    url = app.SHAPES[shape]
    clients.run(url, max(1, count // 5))
    profiler = cProfile.Profile()
    profiler.enable()
    clients.run(url, count)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"{engine} / {shape}: {count} requests")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    print("django_msm's own functions, by cumulative time:")
    stats.sort_stats("cumulative").print_stats("django_msm", TOP)
