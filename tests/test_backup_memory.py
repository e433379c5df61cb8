"""BackupSessionService over in-memory nodes: placement, failover, no loss and no resurrection.

Nodes are ``InMemoryStore``s driven by a ``FakeClock``; ``store.down = True`` is a node that
refuses connections (dead at once, data kept: a network split), ``store.clear()`` a node that
restarted empty, and ``health.record_failure(timeout)`` one slow reply. Scenarios follow
msm's failover tests (reference/msm.md §8) and the failure modes of §2.5-2.6 and §5.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from django_msm import runtime
from django_msm.clock import FakeClock
from django_msm.core import copies as backup_module
from django_msm.core.cluster import Cluster as MsmCluster
from django_msm.core.copies import BackupSessionService, Loaded, UpdateResult
from django_msm.core.envelope import Copy, Kind, unpack
from django_msm.core.keys import SessionId, new_id
from django_msm.core.nodes import Node
from django_msm.core.registry import NodeRegistry
from django_msm.core.repairstate import RepairState
from django_msm.core.retirement import Retirement
from django_msm.core.witness import Witness
from django_msm.exceptions import (
    NodeUnavailable,
    NoNodesAvailable,
    SessionConflict,
    SessionTooLarge,
)
from django_msm.runtime import get_config, reset_registry
from django_msm.session import SessionStore
from django_msm.stores.memory import InMemoryStore

THREE = "n1:10.0.0.1:11211,n2:10.0.0.2:11211,n3:10.0.0.3:11211"
TTL = 3600


@dataclass
class Cluster:
    parts: MsmCluster
    clock: FakeClock

    @property
    def registry(self) -> NodeRegistry:
        return self.parts.registry

    @property
    def service(self) -> BackupSessionService:
        return self.parts.copies

    def node(self, node_id: str) -> Node:
        return next(node for node in self.registry.nodes if node.id == node_id)

    def store(self, node_id: str) -> InMemoryStore:
        store = self.registry.stores[self.node(node_id)]
        assert isinstance(store, InMemoryStore)
        return store

    def stored(self, node_id: str, key: str) -> Copy | None:
        """Read a node directly (no health bookkeeping, the call is not kept)."""
        store = self.store(node_id)
        data = store.get(key)
        store.calls.pop()
        return None if data is None else unpack(data, self.parts.config.signing_keys)

    def calls(self) -> dict[str, list[tuple[str, str]]]:
        """Session traffic per node; the marks (away tokens, generations, repair state) are left
        out: they have tests of their own."""
        return {
            node.id: [call for call in self.store(node.id).calls if "msm:" not in call[1]]
            for node in self.registry.nodes
        }

    def forget_calls(self) -> None:
        for node in self.registry.nodes:
            self.store(node.id).calls.clear()

    def copy(self, payload: bytes = b'{"cart":["apple"]}', revision: int = 1) -> Copy:
        return self.service.new_copy(payload, TTL, revision)

    def session(self, node_id: str, copy: Copy | None = None) -> tuple[SessionId, Copy]:
        """Store a session whose primary copy is on ``node_id``."""
        sid, copy = new_id(node_id), copy or self.copy()
        assert self.service.add(sid, self.node(node_id), copy, TTL)
        return sid, copy

    def load(self, sid: SessionId) -> Loaded:
        return self.service.load(sid, self.node(sid.node_id))

    def delete(self, sid: SessionId, revision: int) -> None:
        """A logout: the witness keeps a tombstone, every other copy goes."""
        self.parts.retirement.delete(sid, self.node(sid.node_id), TTL, revision)

    def update(self, sid: SessionId, copy: Copy) -> UpdateResult:
        result, _token = self.service.update(sid, self.node(sid.node_id), copy, TTL)
        return result

    def timeout(self, node_id: str) -> None:
        """One slow reply from the node, as the registry records it."""
        error = NodeUnavailable(node_id, TimeoutError("timed out"))
        self.registry.health[self.node(node_id)].record_failure(error)


def make_cluster(spec: str = THREE, **msm: Any) -> Cluster:
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec, **msm}):
        config = get_config()
    clock = FakeClock()
    stores = {node: InMemoryStore(node, clock) for node in config.nodes}
    return Cluster(MsmCluster(config, clock, stores), clock)


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster()


def pk(sid: SessionId) -> str:
    return str(sid)


def bk(sid: SessionId) -> str:
    return f"bak:{sid}"


# -- placement ---------------------------------------------------------------------------------
def test_backup_order_is_configured_order_with_failover_nodes_last() -> None:
    cluster = make_cluster("f:h:1,a:h:2,b:h:3,c:h:4", FAILOVER_NODES="f")
    order = {
        node.id: [n.id for n in cluster.registry.backup_nodes(node)]
        for node in cluster.registry.nodes
    }
    assert order == {
        "a": ["b", "c", "f"], "b": ["c", "f", "a"], "c": ["f", "a", "b"], "f": ["a", "b", "c"]
    }


@pytest.mark.parametrize(("primary", "backup"), [("n1", "n2"), ("n2", "n3"), ("n3", "n1")])
def test_backup_is_on_the_next_node(cluster: Cluster, primary: str, backup: str) -> None:
    sid, copy = cluster.session(primary)
    assert cluster.stored(primary, pk(sid)) == copy
    assert cluster.stored(backup, bk(sid)) == copy
    (other,) = {"n1", "n2", "n3"} - {primary, backup}
    assert cluster.calls()[other] == []


def test_storage_keys_carry_the_prefix() -> None:
    cluster = make_cluster(STORAGE_KEY_PREFIX="static:shop static:v2")
    sid, _ = cluster.session("n1")
    assert ("add", f"shop:v2_{sid}") in cluster.calls()["n1"]
    assert ("add", f"bak:shop:v2_{sid}") in cluster.calls()["n2"]


def test_backup_write_walks_past_a_down_node(cluster: Cluster) -> None:
    cluster.store("n2").down = True
    sid, copy = cluster.session("n1")
    assert cluster.stored("n3", bk(sid)) == copy
    assert cluster.calls()["n2"] == [("add", bk(sid))]  # sent with the primary's add
    cluster.forget_calls()
    cluster.session("n1")
    assert cluster.calls()["n2"] == []  # quarantined: not asked again meanwhile


def test_reader_in_another_process_walks_past_a_node_that_misses(cluster: Cluster) -> None:
    cluster.store("n2").down = True
    sid, copy = cluster.session("n1")
    cluster.store("n2").down = False
    cluster.store("n2").clear()  # n2 came back empty
    cluster.store("n1").down = True
    # A second process: same nodes, its own health view that never saw n2 fail.
    other = MsmCluster(cluster.parts.config, cluster.clock, dict(cluster.registry.stores))
    loaded = other.copies.load(sid, cluster.node("n1"))
    assert (loaded.copy, loaded.from_backup) == (copy, True)


@pytest.mark.parametrize("count", [3, 5])
def test_read_walk_is_bounded_by_the_node_count(count: int) -> None:
    """msm #404: with the primary down and no backup, the walk ends after one round."""
    cluster = make_cluster(",".join(f"n{i}:h:{i}" for i in range(1, count + 1)))
    sid = new_id("n1")
    cluster.store("n1").down = True
    # The primary could not be asked: not a miss, the cookie is kept.
    assert cluster.load(sid) == Loaded(unreachable=True)
    assert cluster.calls() == {
        f"n{i}": [("get", pk(sid) if i == 1 else bk(sid))] for i in range(1, count + 1)
    }


def test_every_node_down_is_unreachable_after_one_round(cluster: Cluster) -> None:
    sid, _ = cluster.session("n2")
    cluster.forget_calls()
    for node_id in ("n1", "n2", "n3"):
        cluster.store(node_id).down = True
    assert cluster.load(sid) == Loaded(unreachable=True)
    assert cluster.calls() == {
        "n1": [("get", bk(sid))], "n2": [("get", pk(sid))], "n3": [("get", bk(sid))]
    }


# -- create -------------------------------------------------------------------------------------
def test_create_puts_primary_and_backup_on_consecutive_nodes(cluster: Cluster) -> None:
    copy = cluster.copy()
    sid, _token = cluster.service.create(copy, TTL, "web1")
    primary = cluster.registry.node_for(sid)
    backup = cluster.registry.backup_nodes(primary)[0]
    assert sid.route == "web1"
    assert cluster.stored(primary.id, pk(sid)) == copy
    assert cluster.stored(backup.id, bk(sid)) == copy


def test_create_uses_only_live_nodes(cluster: Cluster) -> None:
    cluster.store("n1").down = True
    cluster.store("n2").down = True
    for _ in range(10):
        sid, _token = cluster.service.create(cluster.copy(), TTL, None)
        assert sid.node_id == "n3"


def test_create_uses_failover_nodes_only_when_regular_ones_are_down() -> None:
    cluster = make_cluster(FAILOVER_NODES="n3")
    ids = {cluster.service.create(cluster.copy(), TTL, None)[0].node_id for _ in range(30)}
    assert ids == {"n1", "n2"}
    cluster.store("n1").down = True
    cluster.store("n2").down = True
    assert cluster.service.create(cluster.copy(), TTL, None)[0].node_id == "n3"


def test_create_with_every_node_down_names_each(cluster: Cluster) -> None:
    for node_id in ("n1", "n2", "n3"):
        cluster.store(node_id).down = True
    with pytest.raises(NoNodesAvailable) as info:
        cluster.service.create(cluster.copy(), TTL, None)
    assert set(info.value.causes) == {"n1", "n2", "n3"}
    assert all(len(calls) == 1 for calls in cluster.calls().values())


def test_create_gives_up_after_a_few_collisions(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = "a" * 32
    for node_id in ("n1", "n2", "n3"):
        cluster.store(node_id).set(f"{base}-{node_id}", b"taken", TTL)
    cluster.forget_calls()
    monkeypatch.setattr(backup_module, "new_id", lambda node, route: SessionId(base, node, route))
    with pytest.raises(NoNodesAvailable) as info:
        cluster.service.create(cluster.copy(), TTL, None)
    assert info.value.causes == {n: "3 key collisions in a row" for n in ("n1", "n2", "n3")}
    primary_adds = {node: [c for c in calls if not c[1].startswith("bak:")]
                    for node, calls in cluster.calls().items()}
    assert all(len(calls) == 3 for calls in primary_adds.values())
    assert not any(cluster.stored(node, bk(SessionId(base, other, None)))  # none left behind
                   for node in ("n1", "n2", "n3") for other in ("n1", "n2", "n3"))


# -- update / touch / delete -----------------------------------------------------------------
def test_update_rewrites_both_copies(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    newer = cluster.copy(b'{"cart":[]}', revision=2)
    assert cluster.update(sid, newer) is UpdateResult.STORED
    assert cluster.stored("n1", pk(sid)) == newer
    assert cluster.stored("n2", bk(sid)) == newer


def test_update_of_a_deleted_session_writes_nothing(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.delete(sid, copy.revision)
    cluster.forget_calls()
    assert cluster.update(sid, cluster.copy(revision=2)) is UpdateResult.DELETED
    ops = {op for calls in cluster.calls().values() for op, _ in calls}
    assert ops <= {"replace", "get"}
    assert all(cluster.stored(n, pk(sid)) is None for n in ("n1", "n2", "n3"))
    assert cluster.stored("n2", bk(sid)).is_tombstone  # the witness's, left by the deletion
    assert cluster.stored("n3", bk(sid)) is None


def test_primary_lost_with_backup_alive_is_lost(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n1").clear()
    assert cluster.update(sid, cluster.copy(revision=2)) is UpdateResult.LOST
    assert cluster.service.touch(sid, cluster.node("n1"), copy, TTL) is UpdateResult.LOST
    assert cluster.stored("n1", pk(sid)) is None  # nothing resurrected under the old key


def test_update_with_primary_unreachable_raises(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    cluster.store("n1").down = True
    with pytest.raises(NodeUnavailable):
        cluster.update(sid, cluster.copy(revision=2))


def test_touch_extends_both_copies(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.clock.advance(TTL - 10)
    assert cluster.service.touch(sid, cluster.node("n1"), copy, TTL) is UpdateResult.STORED
    cluster.clock.advance(TTL - 10)
    assert cluster.stored("n1", pk(sid)) == copy and cluster.stored("n2", bk(sid)) == copy
    cluster.clock.advance(20)
    assert cluster.stored("n1", pk(sid)) is None and cluster.stored("n2", bk(sid)) is None


def test_touch_repairs_a_missing_backup(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n2").clear()
    assert cluster.service.touch(sid, cluster.node("n1"), copy, TTL) is UpdateResult.STORED
    assert cluster.stored("n2", bk(sid)) == copy


def test_delete_leaves_only_a_tombstone_at_the_witness(cluster: Cluster) -> None:
    """Issue 12 (LOCK-DESIGN limit 4): the witness keeps a tombstone, so a request that loaded
    the session before the logout cannot bring it back by moving it (a claim never ``add``s
    over it)."""
    sid, copy = cluster.session("n1")
    cluster.store("n3").set(bk(sid), cluster.service.pack(copy), TTL)  # an old copy past it
    cluster.delete(sid, copy.revision)
    tombstone = cluster.stored("n2", bk(sid))
    assert tombstone is not None and tombstone.is_tombstone and tombstone.payload == b""
    assert tombstone.revision == copy.revision + 1
    assert cluster.stored("n1", pk(sid)) is None and cluster.stored("n3", bk(sid)) is None
    assert cluster.load(sid) == Loaded()
    with pytest.raises(SessionConflict) as refused:
        cluster.parts.retirement.claim(sid, cluster.node("n1"), copy.revision, new_id("n3"), TTL)
    assert (refused.value.moved_to, refused.value.deleted) == (None, True)


def test_delete_with_the_backup_node_down_leaves_tombstones(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n2").down = True
    cluster.delete(sid, copy.revision)
    for node_id, key in (("n1", pk(sid)), ("n3", bk(sid))):
        tombstone = cluster.stored(node_id, key)
        assert tombstone is not None and tombstone.kind is Kind.TOMBSTONE
        assert tombstone.revision == copy.revision + 1
    assert cluster.load(sid) == Loaded()


# -- loading and failover ------------------------------------------------------------------------
def test_load_from_the_primary_costs_one_read(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.forget_calls()
    loaded = cluster.load(sid)
    assert (loaded.copy, loaded.from_backup, loaded.relocate) == (copy, False, False)
    assert cluster.calls() == {"n1": [("get", pk(sid))], "n2": [], "n3": []}


def test_one_timeout_serves_the_backup_without_relocating(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.timeout("n1")
    loaded = cluster.load(sid)
    assert (loaded.copy, loaded.from_backup, loaded.relocate) == (copy, True, False)


def test_dead_primary_serves_the_backup_and_relocates(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n1").down = True
    loaded = cluster.load(sid)
    assert (loaded.copy, loaded.from_backup, loaded.relocate) == (copy, True, True)


def test_repeated_timeouts_make_the_primary_dead_and_relocate(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.timeout("n1")
    cluster.timeout("n1")  # RETRY_ATTEMPTS defaults to 2
    loaded = cluster.load(sid)
    assert (loaded.copy, loaded.relocate) == (copy, True)


def test_primary_restarted_empty_serves_the_backup_and_relocates(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n1").clear()
    loaded = cluster.load(sid)
    assert (loaded.copy, loaded.from_backup, loaded.relocate) == (copy, True, True)


def test_primary_down_and_backup_tombstone_is_a_miss(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.store("n1").down = True
    cluster.delete(sid, copy.revision)
    assert cluster.load(sid) == Loaded()


@pytest.mark.parametrize("data", [b"garbage", b'{"cart":["apple"]}', b"\x00" * 100])
def test_foreign_bytes_on_the_primary_are_a_miss(cluster: Cluster, data: bytes) -> None:
    sid = new_id("n1")
    cluster.store("n1").set(pk(sid), data, TTL)
    assert cluster.load(sid) == Loaded()


def test_copy_signed_with_another_secret_is_a_miss() -> None:
    with override_settings(SECRET_KEY="someone else's"):
        foreign = make_cluster()
        sid, _ = foreign.session("n1")
        data = foreign.store("n1").get(pk(sid))
    cluster = make_cluster()
    cluster.store("n1").set(pk(sid), data, TTL)
    assert cluster.load(sid) == Loaded()


# -- no resurrection, no loss on rejoin -----------------------------------------------------------
def rejoin(cluster: Cluster, node_id: str) -> None:
    """The node answers again and the retry interval has passed: the next call probes it."""
    cluster.store(node_id).down = False
    cluster.clock.advance(5.0)


def test_session_deleted_while_its_primary_was_away_stays_deleted(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.clock.advance(1.0)
    cluster.store("n1").down = True  # a split: n1 keeps its copy
    cluster.delete(sid, copy.revision)
    rejoin(cluster, "n1")
    assert cluster.stored("n1", pk(sid)) == copy  # the stale copy is still there...
    assert cluster.load(sid) == Loaded()  # ...and is not served
    assert cluster.load(sid) == Loaded()


def test_copy_on_a_rejoined_primary_is_verified_until_a_repair_covers_the_outage(
    cluster: Cluster,
) -> None:
    """Verification rewrites nothing (no re-stamp); the doubt ends when the repair state on
    the nodes covers the away token the outage left."""
    sid, copy = cluster.session("n1")
    cluster.store("n1").down = True
    cluster.load(sid)  # the outage is noticed: an away token for n1 on n2 and n3
    rejoin(cluster, "n1")
    for _ in range(2):
        cluster.forget_calls()
        assert cluster.load(sid).copy == copy
        assert cluster.calls()["n2"] == [("get", bk(sid))]  # checked every time
    assert cluster.stored("n1", pk(sid)) == copy
    token = cluster.parts.away.local[cluster.node("n1")]
    covered = RepairState(1, cluster.parts.away.topology, {}, {"n1": (token,)})
    for node_id in ("n1", "n2", "n3"):
        cluster.store(node_id).set("msm:repair:state", covered.encode(), TTL)
    cluster.clock.advance(5.0)  # the marks are read again
    cluster.load(sid)
    cluster.forget_calls()
    assert cluster.load(sid).copy == copy
    assert cluster.calls() == {"n1": [("get", pk(sid))], "n2": [], "n3": []}


def test_a_verification_that_cannot_read_the_backups_marks_nothing(cluster: Cluster) -> None:
    """The logout's tombstones are on n2 and n3, which are away when n1's stale copy is read:
    it is served (nothing says otherwise), but not trusted: the next read checks again."""
    sid, copy = cluster.session("n1")
    cluster.store("n1").down = True
    cluster.delete(sid, copy.revision)
    rejoin(cluster, "n1")
    cluster.store("n2").down = cluster.store("n3").down = True
    assert cluster.load(sid).copy == copy
    assert cluster.stored("n1", pk(sid)) == copy  # not re-stamped, not rewritten
    rejoin(cluster, "n2")
    rejoin(cluster, "n3")
    assert cluster.load(sid).copy is None


def test_a_tombstone_beats_any_session_copy_whatever_clocks_wrote_them(
    cluster: Cluster,
) -> None:
    """A logout on an app host whose clock is a minute behind the one that wrote the session."""
    sid, copy = cluster.session("n1")
    cluster.store("n2").down = True
    copies = BackupSessionService(cluster.registry, cluster.parts.config, cluster.parts.away,
                                  FakeClock(wall=cluster.clock.time() - 60))
    behind = Retirement(Witness(copies), cluster.parts.config, cluster.parts.events)
    behind.delete(sid, cluster.node("n1"), TTL, copy.revision)
    rejoin(cluster, "n2")
    cluster.store("n1").down = True
    assert cluster.load(sid).copy is None


def test_stale_backup_on_a_rejoined_node_does_not_win(cluster: Cluster) -> None:
    """The backup node is split away while the session changes, then the primary dies.

    Bug: the read walk returns the first copy it finds, the stale revision on the rejoined n2,
    although n3 holds the current one (the changes of revision 2 are lost).
    """
    sid, _ = cluster.session("n1")
    cluster.store("n2").down = True
    newer = cluster.copy(b'{"cart":["apple","pear"]}', revision=2)
    assert cluster.update(sid, newer) is UpdateResult.STORED
    assert cluster.stored("n3", bk(sid)) == newer
    rejoin(cluster, "n2")
    cluster.store("n1").down = True
    assert cluster.load(sid).copy == newer


def test_session_deleted_while_the_backup_node_was_away_stays_deleted(cluster: Cluster) -> None:
    """Logout while n2 (holding the backup) is split away; n2 returns, then n1 dies.

    Bug: the read walk serves n2's old copy and walks past the tombstone on n3: the logged-out
    session is back.
    """
    sid, copy = cluster.session("n1")
    cluster.clock.advance(1.0)
    cluster.store("n2").down = True
    cluster.delete(sid, copy.revision)
    rejoin(cluster, "n2")
    cluster.store("n1").down = True
    assert cluster.load(sid).copy is None


# -- size limit ------------------------------------------------------------------------------------
def test_too_large_update_keeps_the_previous_copies() -> None:
    cluster = make_cluster(MAX_SESSION_SIZE=400)
    sid, copy = cluster.session("n1")
    cluster.forget_calls()
    with pytest.raises(SessionTooLarge) as info:
        cluster.update(sid, cluster.copy(os.urandom(1000), revision=2))
    assert info.value.limit == 400 and info.value.size > 1000
    assert cluster.calls() == {"n1": [], "n2": [], "n3": []}
    assert cluster.stored("n1", pk(sid)) == copy and cluster.stored("n2", bk(sid)) == copy


def test_too_large_new_session_touches_no_node() -> None:
    cluster = make_cluster(MAX_SESSION_SIZE=400)
    with pytest.raises(SessionTooLarge):
        cluster.service.create(cluster.copy(os.urandom(1000)), TTL, None)
    assert cluster.calls() == {"n1": [], "n2": [], "n3": []}


def test_compressible_session_over_the_limit_raw_is_accepted() -> None:
    cluster = make_cluster(MAX_SESSION_SIZE=400, COMPRESS_MIN_SIZE=100)
    sid, copy = cluster.session("n1", cluster.copy(b"x" * 5000))
    assert cluster.stored("n1", pk(sid)) == copy


# -- SessionStore: hostile keys never reach a node ----------------------------------------------
@pytest.fixture
def memory_registry() -> Iterator[Cluster]:
    """Install a registry of in-memory nodes (the test settings' n1, n2) as the process's."""
    config = get_config()
    clock = FakeClock()
    stores = {node: InMemoryStore(node, clock) for node in config.nodes}
    runtime._cluster = MsmCluster(config, clock, stores)
    yield Cluster(runtime._cluster, clock)
    reset_registry()


VALID = "k3j0a9x2m4p5q6r7s8t9u0v1w2y3z4b5"
HOSTILE = [
    "abc def ghi",
    f"{VALID}-n1\r\nflush_all",
    f"{VALID}-n1\r\nset x 0 0 1\r\nx",
    f"{VALID}-n1 ",
    f"{VALID}-n1\x00",
    "x" * 300,
    f"{VALID}-nü",
    VALID.upper() + "-n1",
    f"{VALID}-n9",  # well-formed, but no such node
    VALID,  # no node id, and this configuration has ids
    "",
    None,
]


@pytest.mark.parametrize("key", HOSTILE, ids=repr)
def test_hostile_keys_cause_no_store_calls(memory_registry: Cluster, key: Any) -> None:
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None
    assert not SessionStore().exists(key)
    SessionStore().delete(key)
    assert memory_registry.calls() == {"n1": [], "n2": []}


@pytest.mark.parametrize("key", HOSTILE[:4], ids=repr)
def test_saving_under_a_hostile_key_creates_a_fresh_one(memory_registry: Cluster, key: str) -> None:
    store = SessionStore(key)
    store["user"] = 42
    store.save()
    assert store.session_key != key
    fresh = store.session_key
    assert {k for calls in memory_registry.calls().values() for _, k in calls} == {
        fresh, f"bak:{fresh}"
    }
    assert SessionStore(fresh).load() == {"user": 42}


def test_session_store_round_trip_on_memory_nodes(memory_registry: Cluster) -> None:
    store = SessionStore()
    store["cart"] = ["apple"]
    store.save()
    sid = store.session_key
    assert sid is not None and sid.rsplit("-", 1)[1] in {"n1", "n2"}
    assert SessionStore(sid).load() == {"cart": ["apple"]}
    store.delete()
    assert SessionStore(sid).load() == {}


# -- away marks: what one process saw of a node, told to the others ---------------------------
def _second_process(cluster: Cluster) -> Cluster:
    """Another app process on the same nodes, with its own (fresh) health view."""
    parts = MsmCluster(cluster.parts.config, cluster.clock, cluster.registry.stores)
    return Cluster(parts, cluster.clock)


def test_a_process_that_never_saw_the_split_does_not_resurrect(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    cluster.clock.advance(1.0)
    cluster.store("n1").down = True  # split from this process only
    cluster.delete(sid, copy.revision)
    cluster.store("n1").down = False
    other = _second_process(cluster)
    assert other.load(sid).copy is None
    assert other.stored("n1", pk(sid)) == copy  # the stale copy was there to be served


def test_away_marks_are_read_at_most_every_interval(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    cluster.forget_calls()
    cluster.load(sid)
    cluster.load(sid)
    marks = [c for n in ("n1", "n2", "n3") for c in cluster.store(n).calls if "msm:away:" in c[1]]
    assert len(marks) == 6  # 3 nodes x the marks of the 2 others, once
    cluster.clock.advance(5.0)
    cluster.forget_calls()
    cluster.load(sid)
    assert sum("msm:away:" in c[1] for n in ("n1", "n2", "n3") for c in cluster.store(n).calls) == 6


# -- forwards: a relocated key leads late requests to the new key ------------------------------
def test_a_relocation_leaves_a_forward_and_a_logout_does_not(cluster: Cluster) -> None:
    moved, copy = cluster.session("n1")
    new, _ = cluster.session("n2")
    cluster.parts.retirement.claim(moved, cluster.node("n1"), copy.revision, new, TTL)
    cluster.parts.retirement.retire(moved, cluster.node("n1"))
    assert cluster.load(moved) == Loaded(moved_to=str(new))
    gone, copy = cluster.session("n3")
    cluster.delete(gone, copy.revision)
    assert cluster.load(gone) == Loaded()


def test_a_forward_is_found_in_the_witness_tombstone_when_the_primary_is_away(
    cluster: Cluster,
) -> None:
    moved, copy = cluster.session("n1")
    new, _ = cluster.session("n2")
    cluster.store("n1").down = True
    cluster.parts.retirement.claim(moved, cluster.node("n1"), copy.revision, new, TTL)
    cluster.parts.retirement.retire(moved, cluster.node("n1"))
    assert cluster.load(moved) == Loaded(moved_to=str(new))


def test_a_logout_never_writes_over_a_relocation_tombstone(cluster: Cluster) -> None:
    moved, copy = cluster.session("n1")
    new, _ = cluster.session("n2")
    cluster.parts.retirement.claim(moved, cluster.node("n1"), copy.revision, new, TTL)
    cluster.delete(moved, copy.revision)  # a request that loaded it earlier logs out
    assert cluster.load(moved) == Loaded(moved_to=str(new))
