"""The part of the store contract that needs a server process: time, timeouts, refusals, restarts.

``ServerStoreContract`` runs the whole ``StoreContract`` against a real server started on a free
loopback port for each test (``tests/servers.py`` lifecycle), and adds what a pure in-process
store cannot show: a paused node times out within the configured bounds, a closed port is
refused, a restarted node is used again, ``close()`` gives the connections back. Time is the real
clock here; expiry is read from the server itself (``remaining_ttl``), behind the store's back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from django_msm.clock import SystemClock
from django_msm.core.nodes import parse_nodes
from django_msm.exceptions import ItemTooLarge, NodeUnavailable
from django_msm.stores import Store, create_store
from tests.redis_servers import wait_until
from tests.servers import ServerProcess, free_port
from tests.store_calls import CONDITIONAL_WRITERS, KEY, VALUE, WRITERS, every_call
from tests.store_contract import StoreContract

OPERATION_TIMEOUT = 0.5
BACKUP_TIMEOUT = 0.25
# A paused node is noticed after one timeout; this much more is scheduling on a busy machine.
LATE = 1.0


class ServerStoreContract(StoreContract):
    """``StoreContract`` on a real server; subclasses say how to start it and read it directly."""

    # Seconds by which the node's own expiry clock may be coarse (memcached: whole seconds).
    ttl_slack: ClassVar[float] = 0.0
    server: ServerProcess

    # -- hooks --------------------------------------------------------------------------------
    def start_server(self) -> ServerProcess:
        """Start a new server (it is stopped after the test)."""
        raise NotImplementedError

    def node_spec(self, port: int) -> str:
        """The MEMCACHED_NODES form of a node of this kind on 127.0.0.1:``port``."""
        raise NotImplementedError

    def remaining_ttl(self, key: str) -> float | None:
        """Seconds the server will keep ``key`` (None: absent), asked of it directly."""
        raise NotImplementedError

    def connection_counter(self) -> contextlib.AbstractContextManager[Callable[[], int]]:
        """A counter of the server's client connections over one connection of its own."""
        raise NotImplementedError

    # -- StoreContract hooks ------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        """The node of this test (autouse: set up before, torn down after ``store``)."""
        self.server = self.start_server()
        yield
        self.server.stop()

    def make_store_at(self, port: int) -> Store:
        """The store the engine would build for a node on ``port`` (``create_store``)."""
        node = parse_nodes(self.node_spec(port))[0]
        return create_store(node, OPERATION_TIMEOUT, BACKUP_TIMEOUT, SystemClock())

    def make_store(self) -> Store:
        return self.make_store_at(self.server.port)

    def stop_node(self, store: Store) -> None:
        self.server.kill()

    def let_pass(self, seconds: float) -> None:
        time.sleep(seconds)  # the condition waited for is the time itself

    def wait_expired(self, key: str, ttl: float) -> None:
        wait_until(lambda: self.remaining_ttl(key) is None, ttl + self.ttl_slack + 2.0,
                   f"the server to drop an item with a ttl of {ttl} s")

    def assert_expires_in(self, store: Store, key: str, ttl: int) -> None:
        left = self.remaining_ttl(key)
        assert left is not None
        assert ttl - 2 - self.ttl_slack <= left <= ttl + self.ttl_slack, (left, ttl)

    # -- tests ----------------------------------------------------------------------------------
    def test_a_paused_node_times_out_within_the_configured_timeouts(self, store: Store) -> None:
        """Reads wait OPERATION_TIMEOUT; unconditional writes (backups) only BACKUP_TIMEOUT."""
        store.set(KEY, VALUE, 100)
        assert store.get(KEY) == VALUE
        self.server.pause()
        try:
            waits = {}
            for name, call in (("get", store.get), ("set", lambda k: store.set(k, VALUE, 100))):
                start = time.monotonic()
                with pytest.raises(NodeUnavailable) as info:
                    call(KEY)
                waits[name] = time.monotonic() - start
                assert info.value.refused is False, name  # slow, not known dead
        finally:
            self.server.resume()
        assert OPERATION_TIMEOUT * 0.8 <= waits["get"] < OPERATION_TIMEOUT + LATE, waits
        assert BACKUP_TIMEOUT * 0.8 <= waits["set"] < BACKUP_TIMEOUT + LATE, waits
        assert store.get(KEY) == VALUE  # usable again once the node answers

    def test_a_closed_port_refuses_every_call(self) -> None:
        store = self.make_store_at(free_port())
        try:
            for name, call in every_call(KEY):
                with pytest.raises(NodeUnavailable) as info:
                    call(store)
                assert info.value.refused is True, name
                assert info.value.node_id == store.node.label, name
                assert info.value.__cause__ is info.value.cause, name  # the driver's error
        finally:
            store.close()

    def test_a_restarted_node_is_used_again(self, store: Store) -> None:
        """Connections pooled before the restart fail ``stale_connection_failures`` times."""
        store.set(KEY, VALUE, 100)
        assert store.get(KEY) == VALUE  # both pools (operations, backups) hold a connection
        self.server.restart_empty()
        for _ in range(self.stale_connection_failures):
            with pytest.raises(NodeUnavailable) as info:
                store.get(KEY)
            assert info.value.refused is False
        assert store.get(KEY) is None
        store.set(KEY, VALUE, 100)
        assert store.get(KEY) == VALUE

    def test_close_gives_every_connection_back(self, store: Store) -> None:
        with self.connection_counter() as connections:
            before = connections()
            store.set(KEY, VALUE, 100)
            assert store.get(KEY) == VALUE
            assert connections() > before
            store.close()
            wait_until(lambda: connections() == before, 5.0, "the store's connections to close")
            store.close()  # twice is harmless
            assert connections() == before


class ItemLimitContract:
    """For stores whose node refuses items over ``item_size_limit`` (memcached's ``-I``)."""

    item_size_limit: ClassVar[int | None]

    @pytest.mark.parametrize("writer", ["set", *CONDITIONAL_WRITERS])
    def test_an_oversize_value_raises_item_too_large(self, store: Store, writer: str) -> None:
        assert self.item_size_limit is not None
        with pytest.raises(ItemTooLarge) as info:
            WRITERS[writer](store, KEY, b"x" * (self.item_size_limit + 1), 100)
        assert KEY not in str(info.value)
        assert store.ping() is None  # the connection is still in step with the node

    @pytest.mark.parametrize("writer", CONDITIONAL_WRITERS)
    def test_an_oversize_write_leaves_the_stored_value(self, store: Store, writer: str) -> None:
        """A save refused for its size must not lose the session the node held."""
        assert self.item_size_limit is not None
        store.set(KEY, VALUE, 100)
        with pytest.raises(ItemTooLarge):
            WRITERS[writer](store, KEY, b"x" * (self.item_size_limit + 1), 100)
        assert store.get(KEY) == VALUE
