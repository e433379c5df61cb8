"""stores.pool on a real memcached node: a forked child never shares its parent's sockets, and a
command sent and never read closes its socket."""

from __future__ import annotations

import gc
import os
import warnings
from typing import Any

import pytest

from django_msm.exceptions import NodeUnavailable
from django_msm.runtime import get_registry

pytestmark = pytest.mark.integration


@pytest.fixture
def node(memcached_nodes, settings) -> tuple[Any, Any]:
    """One memcached node configured alone: its server process and its store."""
    (server,) = memcached_nodes(1)
    settings.DJANGO_MSM = {"MEMCACHED_NODES": server.spec}
    registry = get_registry()
    return server, registry.stores[registry.nodes[0]]


def test_a_forked_child_opens_its_own_connections(node) -> None:
    """Parent and child reading replies off one shared socket would each get the other's;
    the child starts with an empty pool and the parent's connection keeps working."""
    server, store = node
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


def test_a_started_command_dropped_unread_closes_its_socket(node) -> None:
    """A reply nobody reads (its request ended without the save it was sent for) must not
    leave a socket to the garbage collector, nor go back to the pool with a reply in it."""
    server, store = node
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


def test_a_batch_on_one_connection_is_closed_only_once_every_command_is_dropped(node) -> None:
    """``start_many`` sends several commands on one connection: one reply read reads them all
    and the connection goes back to the pool; all of them dropped unread close it instead."""
    server, store = node
    store.add("k", b"v", 60)
    (connection,) = store.client._idle
    first, second = store.start_many([("get_versioned", ("k",)), ("add", ("k2", b"w", 60))])
    assert store.client._idle == []  # one connection for both
    assert second() is True and first()[0] == b"v"
    assert store.client._idle == [connection]  # back, nothing left unread on it
    first, second = store.start_many([("get_versioned", ("k",)), ("get_versioned", ("k2",))])
    first.abandon()  # type: ignore[attr-defined]
    assert connection.sock is not None  # the other command may still be read
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del first, second
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert connection.sock is None and store.client._idle == []


def test_a_batch_whose_node_stopped_answers_node_unavailable_for_every_command(node) -> None:
    server, store = node
    store.add("k", b"v", 60)
    server.pause()
    try:
        started = store.start_many([("get_versioned", ("k",)), ("add", ("k2", b"w", 60))])
        for reply in started:
            with pytest.raises(NodeUnavailable):
                reply()
    finally:
        server.resume()
    assert store.get("k") == b"v"
