"""A Sentinel-managed Redis node across a real Sentinel failover, all on loopback.

One master, one replica and three Sentinels (quorum 2). The only session node is
``s1:cache:sessions``, a django-redis CACHES entry with django-redis's Sentinel client, so there
is no backup copy to hide a failure: sessions written before the kill can only come back from the
replica Sentinel promotes. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection

from django_msm.runtime import get_config
from tests.redis_servers import RedisProcess, SentinelProcess, wait_until
from tests.visitors import Visitor, new_visitors

pytestmark = pytest.mark.integration

SERVICE = "mymaster"
DOWN_AFTER = 1.0  # seconds of silence before a Sentinel calls the master down
FAILOVER_DEADLINE = 60.0  # generous: a shared, noisy 2-core machine


class Topology:
    """The master, its replica and the Sentinels watching them."""

    def __init__(self) -> None:
        self.master = RedisProcess("master").start()
        self.replica = RedisProcess("replica", replica_of=self.master).start()
        self.sentinels: list[SentinelProcess] = []
        wait_until(self._replica_in_sync, 20, "the replica to sync with the master")
        for _ in range(3):
            sentinel = SentinelProcess(self.master, SERVICE, quorum=2, down_after=DOWN_AFTER)
            self.sentinels.append(sentinel.start())
        wait_until(self._sentinels_ready, 30, "the Sentinels to see the replica and each other")

    def info(self, server: RedisProcess, section: str) -> dict[str, Any]:
        client = server.client(timeout=1.0)
        try:
            return client.info(section)
        except redis.RedisError:
            return {}
        finally:
            client.close()

    def _replica_in_sync(self) -> bool:
        return self.info(self.replica, "replication").get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            client = sentinel.client(timeout=1.0)
            try:
                state = client.sentinel_master(SERVICE)
            except redis.RedisError:
                return False
            finally:
                client.close()
            if state.get("num-slaves") != 1 or state.get("num-other-sentinels") != 2:
                return False
        return True

    def promoted(self) -> bool:
        """True once every Sentinel names the replica and the replica takes writes."""
        ports = {sentinel.master_port() for sentinel in self.sentinels}
        role = self.info(self.replica, "replication").get("role")
        return ports == {self.replica.port} and role == "master"

    def cache_entry(self) -> dict[str, Any]:
        """django-redis's documented Sentinel configuration, with bounded timeouts."""
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{SERVICE}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": [("127.0.0.1", sentinel.port) for sentinel in self.sentinels],
                "SOCKET_TIMEOUT": 0.5,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
            },
        }

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()


@pytest.fixture
def topology() -> Iterator[Topology]:
    topology = Topology()
    yield topology
    topology.stop()


def stored_keys(server: RedisProcess) -> set[str]:
    client = server.client()
    try:
        return {key.decode() for key in client.scan_iter(count=1000)}
    finally:
        client.close()


def test_sessions_survive_a_sentinel_failover(topology: Topology) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": topology.cache_entry(),
    }
    msm = {"MEMCACHED_NODES": "s1:cache:sessions", "OPERATION_TIMEOUT": 0.5,
           "RETRY_TIMEOUT": 0.5}
    with override_settings(CACHES=caches, DJANGO_MSM=msm):
        try:
            run_failover(topology)
        finally:
            get_redis_connection("sessions").connection_pool.disconnect()


def run_failover(topology: Topology) -> None:
    users = new_visitors("s", 40)
    for user in users[:20]:
        user.check_visit()  # a second write for half of them
    assert all(user.key and user.key.endswith("-s1") for user in users)
    prefix = get_config().storage_prefix
    expected = {f"{prefix}{user.key}" for user in users}
    assert expected <= stored_keys(topology.master)

    master = topology.master.client()
    try:
        assert master.wait(1, 5000) == 1, "the replica did not acknowledge the writes"
    finally:
        master.close()
    assert expected <= stored_keys(topology.replica)

    topology.master.kill()
    outage = users[0]
    assert outage.read() == {}, "with no copy reachable the session is served empty"
    assert outage.keys == [outage.key], "and the user keeps the cookie"
    wait_until(topology.promoted, FAILOVER_DEADLINE, "Sentinel to promote the replica")

    wait_until(lambda: outage.read() != {}, 10, "the node to answer from the new master")
    for user in users:  # written before the kill, replicated: every one loads, same key
        user.check_read()
        assert user.relocations == 0, user.keys
    for user in users:
        user.check_visit()
    fresh = new_visitors("after", 10)
    for user in fresh:
        user.check_read()
    assert {f"{prefix}{user.key}" for user in fresh} <= stored_keys(topology.replica)

    reader = Visitor("replay")  # another client presenting an old cookie also gets the session
    reader.client.cookies[settings.SESSION_COOKIE_NAME] = users[-1].key or ""
    assert reader.read() == users[-1].expected()
