"""Issue 14: the witness read of a save leaves when the view changes the session (on real
memcached, whose saves read the witness first), and the save uses its answer.

Counted from memcached's own ``cmd_get`` on the witness node: the read is sent when Django sets
``modified``, the save sends no other, and a request that changes its session but does not save
it hands the connection back when it ends.
"""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from django_msm.core.keys import parse
from django_msm.exceptions import NodeUnavailable
from django_msm.runtime import get_cluster
from django_msm.session import SessionStore
from tests.servers import MemcachedProcess, raw_client
from tests.visitors import msm_settings

pytestmark = pytest.mark.integration


def gets(node: MemcachedProcess) -> int:
    with raw_client(node) as client:
        return int(client.stats()[b"cmd_get"])


def witness_of(key: str, nodes: list[MemcachedProcess]) -> MemcachedProcess:
    sid = parse(key)
    assert sid is not None
    return next(node for node in nodes if node.node_id != sid.node_id)  # two nodes


def saved(value: int) -> str:
    store = SessionStore()
    store["n"] = value
    store.save()
    assert store.session_key is not None
    return store.session_key


def test_the_saves_witness_read_leaves_with_the_change(memcached_nodes) -> None:
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        key = saved(1)
        witness = witness_of(key, nodes)
        store = SessionStore(key)
        assert store["n"] == 1
        before = gets(witness)
        store["n"] = 2  # Django sets modified: the witness read goes now
        assert gets(witness) == before + 1
        store.save()
        assert gets(witness) == before + 1  # the save read nothing more
        assert SessionStore(key)["n"] == 2
        backup = get_cluster().keys.backup(parse(key))  # type: ignore[arg-type]
        with raw_client(witness) as client:
            assert client.get(backup) is not None


def test_a_change_never_saved_hands_its_connection_back(memcached_nodes) -> None:
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        key = saved(1)
        store = SessionStore(key)
        store["n"] = 2
        assert store._engine.ahead.pending is not None
        store.release_lock()  # the end of the request (django_msm.middleware)
        assert store._engine.ahead.pending is None
        for _ in range(3):  # the pooled connections still answer their own replies
            other = SessionStore(key)
            other["n"] = other["n"] + 1
            other.save()
        assert SessionStore(key)["n"] == 4


def test_no_read_leaves_for_a_new_session_or_a_deleted_one(memcached_nodes) -> None:
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        store = SessionStore()
        store["n"] = 1  # nothing loaded: nothing to read ahead
        assert store._engine.ahead.pending is None
        store.save()
        key = store.session_key
        assert key is not None
        again = SessionStore(key)
        again["n"] = 2
        again.flush()  # a logout after a change: the read is settled, the session gone
        assert again._engine.ahead.pending is None
        assert SessionStore(key).get("n") is None


def test_a_change_left_unsaved_closes_its_connection_when_the_store_goes(
    memcached_nodes,
) -> None:
    """Django's own middleware saves no 500 response and calls nothing at the end: the read
    nobody settled has its connection closed (no I/O), not left to the garbage collector."""
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        key = saved(1)
        store = SessionStore(key)
        store["n"] = 2
        pending = store._engine.ahead.pending
        assert pending is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del store
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert all(isinstance(answer, NodeUnavailable) for answer in pending.answers())
        assert SessionStore(key)["n"] == 1  # and the nodes serve on


def test_no_read_leaves_when_a_loaded_session_gets_a_new_key(memcached_nodes) -> None:
    """``cycle_key`` (every login) loads, creates under a new key, marks the session modified:
    that is no change of a loaded copy, so nothing is read ahead for the new key."""
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        old = saved(1)
        store = SessionStore(old)
        assert store["n"] == 1
        store.create()  # cycle_key's first half: the new key, then modified = True
        assert store._engine.ahead.pending is None
        store.delete(old)  # and its second half
        store.save()
        assert SessionStore(store.session_key)["n"] == 1
        assert SessionStore(old).get("n") is None


def test_no_read_leaves_from_an_event_loop(memcached_nodes) -> None:
    """``aset`` marks the session modified on the event loop's thread: no node I/O there."""
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        key = saved(1)

        async def view() -> tuple[bool, int]:
            store = SessionStore(key)
            before = await store.aget("n")
            await store.aset("n", before + 1)
            sent = store._engine.ahead.pending is not None
            await store.asave()
            return sent, (await SessionStore(key).aget("n"))

        assert asyncio.run(view()) == (False, 2)
