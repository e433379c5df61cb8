"""Django 5.2's own session contract on Redis-only and mixed (memcached + Redis) clusters.

``SessionTestsMixin`` (sync and async) is imported from the Django sdist's
``tests/sessions_tests``, never copied. Each class starts its own servers, one per entry of
``node_kinds``; the sticky variants are one more subclass each, with
``msm_settings = {"STICKY": True}``.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

from django.core.cache import caches
from django.test import SimpleTestCase, override_settings
from django_redis import get_redis_connection
from pymemcache.client.base import Client as PymemcacheClient
from sessions_tests.tests import SessionTestsMixin

from django_msm.core.keys import parse
from django_msm.runtime import get_config
from django_msm.session import SessionStore
from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess

LOCAL_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def django_redis_cache(server: RedisProcess, timeout: float = 1.0) -> dict[str, Any]:
    """A django-redis CACHES entry for ``server``, with bounded socket timeouts."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"SOCKET_TIMEOUT": timeout, "SOCKET_CONNECT_TIMEOUT": timeout},
    }


def raw_get(server: MemcachedProcess | RedisProcess, key: str) -> bytes | None:
    """Read a stored item behind the engine's back."""
    if isinstance(server, RedisProcess):
        client = server.client()
    else:
        client = PymemcacheClient(("127.0.0.1", server.port), connect_timeout=2, timeout=2)
    try:
        return client.get(key)
    finally:
        client.close()


class RedisClusterMixin:
    """Start one server per ``node_kinds`` entry for the class and point DJANGO_MSM at them.

    Kinds: ``"memcached"`` (``id:host:port``), ``"redis"`` (``id:redis://…``), ``"cache"``
    (``id:cache:ALIAS``, a django-redis ``CACHES`` entry) and ``"single-redis"`` (msm's
    ``redis://host:port`` without id, only alone). Nodes are named n1, n2… in that order.
    """

    node_kinds: ClassVar[tuple[str, ...]] = ("redis", "redis")
    msm_settings: ClassVar[dict[str, Any]] = {}
    servers: ClassVar[list[MemcachedProcess | RedisProcess]]
    cache_aliases: ClassVar[list[str]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.servers, cls.cache_aliases = [], []
        specs, cache_settings = [], {"default": LOCAL_CACHE}
        for index, kind in enumerate(cls.node_kinds, start=1):
            node_id = f"n{index}"
            if kind == "memcached":
                server: MemcachedProcess | RedisProcess = MemcachedProcess(node_id).start()
                specs.append(server.spec)
            else:
                server = RedisProcess(node_id).start()
                specs.append(cls._redis_spec(kind, server, cache_settings))
            cls.servers.append(server)
        msm = {"MEMCACHED_NODES": ",".join(specs), "OPERATION_TIMEOUT": 1.0, **cls.msm_settings}
        cls._msm_override = override_settings(DJANGO_MSM=msm, CACHES=cache_settings)
        cls._msm_override.enable()
        super().setUpClass()  # type: ignore[misc]

    @classmethod
    def _redis_spec(cls, kind: str, server: RedisProcess, cache_settings: dict[str, Any]) -> str:
        if kind == "redis":
            return server.spec
        if kind == "single-redis":
            return server.url
        if kind == "cache":
            alias = f"sessions_{server.node_id}"
            cache_settings[alias] = django_redis_cache(server)
            cls.cache_aliases.append(alias)
            return f"{server.node_id}:cache:{alias}"
        raise ValueError(f"unknown node kind {kind!r}")

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()  # type: ignore[misc]
        for alias in cls.cache_aliases:  # django-redis keeps its pools process-wide
            get_redis_connection(alias).connection_pool.disconnect()
            caches[alias].close()
        cls._msm_override.disable()
        for server in cls.servers:
            server.stop()


class ContractMixin(SessionTestsMixin):
    backend = SessionStore

    def test_load_overlong_key(self) -> None:
        self.session._session_key = (string.ascii_letters + string.digits) * 20
        self.assertEqual(self.session.load(), {})

    def test_copies_are_on_the_primary_and_the_next_node(self) -> None:
        """Not Django's: both copies of a saved session are where the key says, read raw."""
        self.session["x"] = 1
        self.session.save()
        sid = parse(self.session.session_key)
        assert sid is not None
        prefix = get_config().storage_prefix
        servers = self.servers  # type: ignore[attr-defined]
        if sid.node_id is None:  # msm's single id-less form
            self.assertEqual(len(servers), 1)
            self.assertIsNotNone(raw_get(servers[0], f"{prefix}{sid}"))
            return
        index = [server.node_id for server in servers].index(sid.node_id)
        self.assertIsNotNone(raw_get(servers[index], f"{prefix}{sid}"))
        backup = servers[(index + 1) % len(servers)]
        self.assertIsNotNone(raw_get(backup, f"bak:{prefix}{sid}"))


class RedisContractTests(RedisClusterMixin, ContractMixin, SimpleTestCase):
    """Two Redis nodes: primary on one, backup on the other."""


@override_settings(USE_TZ=False)
class RedisContractNaiveTimeTests(RedisContractTests):
    """Django runs its suite with and without time zones; so do we."""


class SingleRedisContractTests(RedisClusterMixin, ContractMixin, SimpleTestCase):
    """msm's single ``redis://host:port``: keys carry no node id, no backup copy."""

    node_kinds = ("single-redis",)


class CacheAliasContractTests(RedisClusterMixin, ContractMixin, SimpleTestCase):
    """Two ``id:cache:ALIAS`` nodes: django-redis's clients and pools serve the sessions."""

    node_kinds = ("cache", "cache")


class MixedContractTests(RedisClusterMixin, ContractMixin, SimpleTestCase):
    """memcached and Redis side by side: each holds primaries and the other's backups."""

    node_kinds = ("memcached", "redis")


class MixedThreeKindsContractTests(RedisClusterMixin, ContractMixin, SimpleTestCase):
    """One node of each kind, with a storage key prefix on all of them."""

    node_kinds = ("memcached", "redis", "cache")
    msm_settings: ClassVar[dict[str, Any]] = {"STORAGE_KEY_PREFIX": "static:app"}


class RedisStickyContractTests(RedisContractTests):
    """Sticky mode on Redis: process-local primaries checked against the node's version."""

    msm_settings: ClassVar[dict[str, Any]] = {"STICKY": True}


class CacheAliasStickyContractTests(CacheAliasContractTests):
    msm_settings: ClassVar[dict[str, Any]] = {"STICKY": True}


class MixedStickyContractTests(MixedThreeKindsContractTests):
    msm_settings: ClassVar[dict[str, Any]] = {"STICKY": True, "STORAGE_KEY_PREFIX": "static:app"}


# Only the subclasses above are tests here; Django's own mixin must not be collected again.
del SessionTestsMixin
