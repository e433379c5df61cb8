"""Session settings of the peers the chaos harness (``chaos/``) compares django_msm with.

``MSM_DEMO_ENGINE`` picks one; every peer runs on the cluster's own nodes (``MSM_DEMO_NODES``,
node ids dropped) with the timeouts a careful operator would set, because the libraries' defaults
(no socket timeout at all) hang a request for as long as a node is paused (peers.md, finding 3):

* ``cache``: Django's cache engine on ``PyMemcacheCache`` (pymemcache ``HashClient``), the
  options of the experiments in peers.md (0.5 s timeouts, ``dead_timeout`` 3 s);
* ``cached_db``: the same cache in front of the SQLite file both instances share;
* ``django-redis``: Django's cache engine on django-redis' ``RedisCache``, ``LOCATION`` =
  [primary, replica], the topology django-redis documents for more than one server.
"""

from __future__ import annotations

from typing import Any

PEER_ENGINES = ("cache", "cached_db", "django-redis")
SESSION_ENGINES = {
    "cache": "django.contrib.sessions.backends.cache",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "django-redis": "django.contrib.sessions.backends.cache",
}
PYMEMCACHE_OPTIONS = {"connect_timeout": 0.5, "timeout": 0.5, "dead_timeout": 3}
DJANGO_REDIS_OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}


def locations(nodes: str) -> list[str]:
    """``n1:127.0.0.1:11211,n2:redis://…`` → ``["127.0.0.1:11211", "redis://…"]``."""
    specs = nodes.replace(" ", ",").split(",")
    return [spec.split(":", 1)[1] for spec in specs if spec]


def peer_caches(engine: str, nodes: str) -> dict[str, Any]:
    """``CACHES`` for a peer engine over the cluster's nodes."""
    backend = "django.core.cache.backends.memcached.PyMemcacheCache"
    options: dict[str, Any] = PYMEMCACHE_OPTIONS
    if engine == "django-redis":
        backend, options = "django_redis.cache.RedisCache", DJANGO_REDIS_OPTIONS
    return {"default": {"BACKEND": backend, "LOCATION": locations(nodes), "OPTIONS": options}}
