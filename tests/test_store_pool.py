"""stores.pool on a real memcached node: a forked child never shares its parent's sockets, and a
command sent and never read closes its socket."""

from __future__ import annotations

import gc
import os
import warnings

import pytest

from django_msm.runtime import get_registry

pytestmark = pytest.mark.integration


def test_a_forked_child_opens_its_own_connections(memcached_nodes, settings) -> None:
    """Parent and child reading replies off one shared socket would each get the other's;
    the child starts with an empty pool and the parent's connection keeps working."""
    (server,) = memcached_nodes(1)
    settings.DJANGO_MSM = {"MEMCACHED_NODES": server.spec}
    registry = get_registry()
    store = registry.stores[registry.nodes[0]]
    store.add("shared", b"parent", 60)
    (parent_connection,) = store.client._idle
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        ok = store.client._idle == [] and store.get("shared") == b"parent"
        ok = ok and parent_connection not in store.client._idle
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child reused its parent's connection"
    assert store.client._idle == [parent_connection]
    assert store.get("shared") == b"parent"


def test_a_started_command_dropped_unread_closes_its_socket(memcached_nodes, settings) -> None:
    """A reply nobody reads (its request ended without the save it was sent for) must not
    leave a socket to the garbage collector, nor go back to the pool with a reply in it."""
    (server,) = memcached_nodes(1)
    settings.DJANGO_MSM = {"MEMCACHED_NODES": server.spec}
    registry = get_registry()
    store = registry.stores[registry.nodes[0]]
    store.add("k", b"v", 60)
    idle_before = list(store.client._idle)
    started = store.start("get_versioned", "k")
    (connection,) = idle_before  # taken out of the pool for the command
    assert store.client._idle == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del started
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert connection.sock is None and store.client._idle == []  # closed, not pooled
    assert store.get("k") == b"v"  # a new connection serves on
