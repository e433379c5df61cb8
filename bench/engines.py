"""The engines the benchmark compares, and how one of them is made the active one.

An engine is a session set-up as a project would configure it: ``SESSION_ENGINE``, the session
middleware, the cache alias Django's ``cache`` engine uses, and for django_msm a ``DJANGO_MSM``
dict. All of them live in one process so that their batches can be interleaved.

django_msm keeps one process-global node registry (pools, health, sticky mode's local copies),
built from the settings and dropped whenever ``DJANGO_MSM`` changes. A deployment has one
configuration per process; here several take turns, so ``Switch`` keeps one registry per
engine and puts it back when the engine's turn comes: a sticky engine finds its local copies
and every engine its warm connections, as a real worker would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from django_msm import runtime
from django_msm.core.cluster import Cluster

from .app import MSM_MIDDLEWARE, STOCK_MIDDLEWARE

CACHE_ENGINE = "django.contrib.sessions.backends.cache"
MSM_ENGINE = "django_msm.session"
NODE_COUNTS = (2, 4, 8)


@dataclass(frozen=True)
class Engine:
    """One session set-up. ``server`` names the servers whose counters show its commands."""

    name: str
    session_engine: str
    middleware: str = STOCK_MIDDLEWARE
    cache_alias: str = "default"
    msm: Mapping[str, Any] | None = field(default=None, hash=False)
    keeps_connections: bool = False
    server: str = "memcached"
    nodes: int = 2
    serializer: str | None = None  # SESSION_SERIALIZER, when not Django's default



def cache_settings(memcached: Sequence[str], redis_urls: Sequence[str]) -> dict[str, Any]:
    """``CACHES``: PyMemcacheCache over the first 2, 4 and 8 memcached nodes, and django-redis
    sharding over the Redis nodes (its default client would treat the second as a replica)."""
    entries: dict[str, Any] = {
        cache_alias(count): {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": list(memcached[:count]),
        }
        for count in NODE_COUNTS
    }
    entries["redis"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": list(redis_urls),
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"},
    }
    return entries


def cache_alias(nodes: int) -> str:
    return "default" if nodes == 2 else f"mc{nodes}"


def build_engines(memcached: Sequence[str], redis: Sequence[str]) -> dict[str, Engine]:
    """Every engine by name; ``memcached``/``redis`` are node specs in MEMCACHED_NODES form."""
    two = ",".join(memcached[:2])
    on_redis = ",".join(redis)
    engines = [
        Engine("django", CACHE_ENGINE),
        # Django's engine with its cache's close() a no-op during its requests: the connection
        # survives request_finished, as msm's pool does. Not a stock set-up; it shows how much
        # of the stock engine's cost is its per-request reconnect.
        Engine("django-kept", CACHE_ENGINE, keeps_connections=True),
        Engine("msm", MSM_ENGINE, msm={"MEMCACHED_NODES": two}),
        Engine("msm-mw", MSM_ENGINE, MSM_MIDDLEWARE, msm={"MEMCACHED_NODES": two}),
        Engine("msm-sticky", MSM_ENGINE, MSM_MIDDLEWARE,
               msm={"MEMCACHED_NODES": two, "STICKY": True, "ROUTE": "bench"}),
        Engine("msm-locked", MSM_ENGINE, MSM_MIDDLEWARE,
               msm={"MEMCACHED_NODES": two, "LOCKING_MODE": "all"}),
        Engine("django-redis", CACHE_ENGINE, cache_alias="redis", server="redis"),
        Engine("msm-redis", MSM_ENGINE, msm={"MEMCACHED_NODES": on_redis}, server="redis"),
        Engine("msm-redis-sticky", MSM_ENGINE, MSM_MIDDLEWARE,
               msm={"MEMCACHED_NODES": on_redis, "STICKY": True, "ROUTE": "bench"},
               server="redis"),
    ]
    for count in NODE_COUNTS[1:]:
        engines.append(
            Engine(f"django-{count}", CACHE_ENGINE, cache_alias=cache_alias(count), nodes=count)
        )
        spec = ",".join(memcached[:count])
        engines.append(
            Engine(f"msm-{count}", MSM_ENGINE, msm={"MEMCACHED_NODES": spec}, nodes=count)
        )
    return {engine.name: engine for engine in engines}


def node_engine(kind: str, count: int) -> str:
    """The engine name of ``kind`` ("django" or "msm") on ``count`` memcached nodes."""
    return kind if count == 2 else f"{kind}-{count}"


def _keep_open(**kwargs: object) -> None:
    """Stands in for the cache's ``close`` during django-kept requests."""


class Switch:
    """Makes one engine the active one; keeps each django_msm engine's registry across turns."""

    def __init__(self) -> None:
        self.registries: dict[str, Cluster] = {}

    @contextlib.contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        overrides = {
            "SESSION_ENGINE": engine.session_engine,
            "SESSION_CACHE_ALIAS": engine.cache_alias,
            "MIDDLEWARE": [engine.middleware],
        }
        with override_settings(**overrides):
            if engine.serializer is not None:
                # Inside the override, as DJANGO_MSM below: SESSION_SERIALIZER is a setting
                # django_msm watches, and overriding it would close the active registry.
                settings.SESSION_SERIALIZER = engine.serializer
            if engine.msm is not None:
                self._use_registry(engine)
            if not engine.keeps_connections:
                yield
                return
            # The signal still fires and close_caches still runs, as for the other engines;
            # only this thread's client ignores it.
            cache = caches[engine.cache_alias]
            cache.close = _keep_open  # type: ignore[method-assign]
            try:
                yield
            finally:
                del cache.close
                cache.close()  # the stock engine's next request must not find it open

    def _use_registry(self, engine: Engine) -> None:
        # Set inside the override, so no setting_changed fires and no registry is closed; the
        # cached config is rebuilt from it and the engine's own registry is put in place.
        settings.DJANGO_MSM = dict(engine.msm or {})
        runtime.get_config.cache_clear()
        runtime._cluster = self.registries.get(engine.name)
        self.registries[engine.name] = runtime.get_cluster()

    def close(self) -> None:
        """Flush and close every registry (pools, async writers)."""
        for registry in self.registries.values():
            registry.close()
        self.registries.clear()
        runtime._cluster = None
