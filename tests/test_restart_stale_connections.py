"""A memcached node that restarts must be usable again after one failed operation.

Found while building the demo (issue 7): every connection a process pooled before the restart
is dead afterwards, and each one, taken from the pool in turn, fails once and quarantines the
node for another RETRY_TIMEOUT. A process that served N requests at once before the restart
keeps a healthy node out for about N retry intervals, and the failures add up to "dead", which
relocates the sessions whose primary is there.
"""

from __future__ import annotations

import threading
import time

import pytest
from pymemcache.client.base import Client

from django_msm.exceptions import NodeUnavailable
from django_msm.runtime import get_registry

pytestmark = pytest.mark.integration
RETRY_TIMEOUT = 0.2
CONCURRENT = 4


def _pool_connections(node: object) -> None:
    """Use the node from several threads at once, so the pool holds several connections."""
    registry = get_registry()
    barrier = threading.Barrier(CONCURRENT)

    def work() -> None:
        for _ in range(50):
            barrier.wait(timeout=10)
            registry.call(node, lambda store: store.get("warm-up"))

    threads = [threading.Thread(target=work) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


def test_restarted_node_is_back_after_one_failure(memcached_nodes, settings) -> None:
    (server,) = memcached_nodes(1)
    settings.DJANGO_MSM = {"MEMCACHED_NODES": server.spec, "RETRY_TIMEOUT": RETRY_TIMEOUT,
                           "OPERATION_TIMEOUT": 1.0}
    registry = get_registry()
    node = registry.nodes[0]
    _pool_connections(node)

    server.restart_empty()
    failures = 0
    for _ in range(CONCURRENT + 2):  # bounded: a few retry intervals
        time.sleep(RETRY_TIMEOUT * 1.5)
        try:
            registry.call(node, lambda store: store.get("after-restart"))
        except NodeUnavailable:
            failures += 1
            continue
        break
    assert registry.health[node].state.value == "up"
    assert failures <= 1, f"{failures} failures after the restart: stale pooled connections"


def test_dropping_connections_leaves_those_in_use_open(memcached_nodes, settings) -> None:
    """A failed call drops the pooled connections, but only the idle ones: closing one that
    another thread is in the middle of using made that thread's call raise AttributeError (a
    500 under a node pause, test_locking_under_faults.py). The one in use is closed when its
    command ends, not put back."""
    (server,) = memcached_nodes(1)
    settings.DJANGO_MSM = {"MEMCACHED_NODES": server.spec}
    registry = get_registry()
    _pool_connections(registry.nodes[0])
    store = registry.stores[registry.nodes[0]]
    pool = store.client
    idle = list(pool._idle)
    assert len(idle) > 1, "the warm-up pooled no spare connection"

    def held_while_dropped(in_use: Client) -> bytes | None:
        in_use.set("held", b"1")
        store.drop_connections()  # what another thread's failure does meanwhile
        assert in_use.sock is not None, "a connection in use was closed under its thread"
        return in_use.get("held")

    assert pool.run(held_while_dropped) == b"1"
    assert all(client.sock is None for client in idle)
    assert pool._idle == [], "a connection out during the drop was put back"
    assert store.get("held") == b"1"  # a new connection, opened on demand
