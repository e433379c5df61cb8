"""The store contract (``tests/store_contract.py``) run against each store adapter.

In-memory on a ``FakeClock`` (expiry is driven, never slept), memcached and Redis on real server
processes started per test on free loopback ports. Each class lists its documented differences
as hook values and its bugs in ``known_bugs`` (strict xfails).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from django_msm.clock import FakeClock
from django_msm.core.nodes import Node, NodeKind
from django_msm.stores import Store, create_store
from tests.redis_servers import RedisProcess
from tests.server_store_contract import ItemLimitContract, ServerStoreContract
from tests.servers import MemcachedProcess, NodeStats, ServerProcess, raw_client
from tests.store_contract import StoreContract

MEMCACHED_ITEM_SIZE = 1024 * 1024  # memcached's default -I


class TestInMemoryStore(StoreContract):
    """The process-local store (``ENABLED = False``, unit tests of the core)."""

    known_bugs: ClassVar[dict[str, str]] = {
        "test_delete_of_an_expired_item_is_false":
            "InMemoryStore.delete pops the item without checking its expiry, so it answers "
            "True for an item that expired but was not read since (memcached and Redis: False)",
    }

    def make_store(self) -> Store:
        self.clock = FakeClock()
        return create_store(Node("m1", NodeKind.MEMORY, "memory"), 1.0, 1.0, self.clock)

    def stop_node(self, store: Store) -> None:
        store.down = True  # type: ignore[attr-defined]  # InMemoryStore's documented switch

    def let_pass(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def wait_expired(self, key: str, ttl: float) -> None:
        self.clock.advance(ttl)

    def assert_expires_in(self, store: Store, key: str, ttl: int) -> None:
        self.clock.advance(ttl - 0.5)
        assert store.get(key) is not None
        self.clock.advance(1.0)
        assert store.get(key) is None


@pytest.mark.integration
class TestMemcachedStore(ItemLimitContract, ServerStoreContract):
    """``MemcachedStore`` on a real memcached (1.6 or later: meta commands)."""

    tokens_follow_bytes = False  # CAS values
    item_size_limit = MEMCACHED_ITEM_SIZE
    ttl_slack = 1.0  # memcached's clock ticks in whole seconds
    stale_connection_failures = 1  # pymemcache notices a dead pooled socket only by using it
    known_bugs: ClassVar[dict[str, str]] = {
        "test_unlock_of_an_expired_lock_is_false":
            "the lock item outlives its deadline by up to ceil(ttl) + 1 s and unlock deletes "
            "it by CAS alone, so a release after expiry answers True and the core never counts "
            "locks_expired_before_release on memcached",
        "test_an_oversize_write_leaves_the_stored_value[add_versioned]":
            "memcached unlinks the stored item when a meta set (ms ... ME) is too large, so an "
            "over-size add_versioned deletes the session it should have left alone",
        "test_an_oversize_write_leaves_the_stored_value[replace_versioned]":
            "memcached unlinks the stored item when a meta set (ms ... MR) is too large: a save "
            "(BackupSessionService.update) over the node's item size deletes the session, "
            "while plain replace leaves it",
        "test_an_oversize_write_leaves_the_stored_value[cas]":
            "memcached unlinks the stored item when a meta set (ms ... C<cas>) is too large, so "
            "an over-size cas deletes the value it should have left alone (the user index "
            "stays far below the item size: USER_SESSIONS_MAX entries of bounded size)",
    }

    def start_server(self) -> ServerProcess:
        return MemcachedProcess("n1").start()

    def node_spec(self, port: int) -> str:
        return f"n1:127.0.0.1:{port}"

    def remaining_ttl(self, key: str) -> float | None:
        assert isinstance(self.server, MemcachedProcess)
        with raw_client(self.server) as client:
            reply = client.raw_command(f"mg {key} t".encode())  # "HD t<seconds>" or "EN"
        if reply == b"EN":
            return None
        seconds = int(reply.split()[1][1:])
        return float("inf") if seconds == -1 else float(seconds)

    @contextlib.contextmanager
    def connection_counter(self) -> Iterator[Callable[[], int]]:
        stats = NodeStats(self.server.port)
        try:
            yield lambda: stats.read()["curr_connections"]
        finally:
            stats.close()


@pytest.mark.integration
class TestRedisStore(ServerStoreContract):
    """``RedisStore`` on a real redis-server, through its ``id:redis://`` URL form."""

    def start_server(self) -> ServerProcess:
        return RedisProcess("r1").start()

    def node_spec(self, port: int) -> str:
        return f"r1:redis://127.0.0.1:{port}/0"

    def remaining_ttl(self, key: str) -> float | None:
        assert isinstance(self.server, RedisProcess)
        client = self.server.client()
        try:
            millis = int(client.pttl(key))
        finally:
            client.close()
        if millis == -2:
            return None
        return float("inf") if millis == -1 else millis / 1000

    @contextlib.contextmanager
    def connection_counter(self) -> Iterator[Callable[[], int]]:
        assert isinstance(self.server, RedisProcess)
        client = self.server.client()
        try:
            yield lambda: len(client.client_list())
        finally:
            client.close()

