"""The engines a chaos run compares, and how testproject is told to use each one.

Every engine runs on the schedule's nodes (two, or three where it says so) of the schedule's
kind. django_msm uses them as its nodes (primary and backup copies), with ``LOCKING_MODE = "all"``
so that concurrent requests of one user are serialised. The peers use them as they are documented
to: Django's memcached cache shards keys over all nodes (pymemcache ``HashClient``); django-redis
writes to the first ``LOCATION`` and reads from the others, so the others are replicas of the
first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Engine:
    key: str
    label: str
    nodes: str  # "memcached" or "redis"
    env: dict[str, str] = field(default_factory=dict)
    replicated: bool = False  # n2 is a Redis replica of n1
    is_msm: bool = False


_LOCKED = {"MSM_DEMO_ENGINE": "msm", "MSM_DEMO_LOCKING": "all"}
ENGINES = {
    engine.key: engine
    for engine in (
        Engine("msm", "django_msm (locking)", "memcached", _LOCKED, is_msm=True),
        Engine("cache", "Django cache (PyMemcacheCache)", "memcached",
               {"MSM_DEMO_ENGINE": "cache"}),
        Engine("cached_db", "Django cached_db (SQLite)", "memcached",
               {"MSM_DEMO_ENGINE": "cached_db"}),
        Engine("msm-redis", "django_msm on Redis (locking)", "redis", _LOCKED, is_msm=True),
        Engine("django-redis", "django-redis (primary + replica)", "redis",
               {"MSM_DEMO_ENGINE": "django-redis"}, replicated=True),
    )
}


def for_nodes(kind: str, wanted: tuple[str, ...] = ()) -> list[Engine]:
    """The engines running on ``kind`` nodes, restricted to ``wanted`` keys when given."""
    return [
        engine for engine in ENGINES.values()
        if engine.nodes == kind and (not wanted or engine.key in wanted)
    ]
