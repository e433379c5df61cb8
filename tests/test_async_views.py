"""django_msm's middleware with async views (ASGI path), locking included, on real memcached.

Concurrent async requests that wait for a session lock once deadlocked Django's single
thread-sensitive sync thread until the lock expired, losing updates (5 increments kept 1).
"""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient, override_settings

from django_msm.core import keys as msm_keys
from django_msm.runtime import get_registry
from django_msm.session import SessionStore

pytestmark = pytest.mark.integration


def _settings(servers):
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": ",".join(s.spec for s in servers), "LOCKING_MODE": "all",
                    "LOCK_WAIT_TIMEOUT": 10.0},
        ROOT_URLCONF="tests.async_urls",
        MIDDLEWARE=["django_msm.middleware.SessionMiddleware"],
    )


def test_async_views_keep_sessions_and_release_locks(memcached_nodes):
    with _settings(memcached_nodes(2)):
        async def scenario():
            client = AsyncClient()
            first = await client.get("/count/")
            key = first.cookies["sessionid"].value
            replies = await asyncio.gather(*(client.get("/count/") for _ in range(5)))
            assert all(reply.status_code == 200 for reply in replies)
            login = await client.get("/login/")
            return key, login.json()["key"]

        key, new_key = asyncio.run(scenario())
        assert SessionStore(new_key).load() == {"n": 6, "user": "alice"}
        assert SessionStore(key).load() == {}  # cycle_key retired the old key, no forward
        sid = msm_keys.parse(new_key)
        store = get_registry().stores[get_registry().node_for(sid)]
        assert store.lock(f"lock:{sid}", b"probe", 1.0) is not None  # released
