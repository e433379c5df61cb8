"""Repair over in-memory nodes: what a pass restores, replaces, removes and never brings back.

Nodes are ``InMemoryStore``s on a ``FakeClock`` (``store.clear()`` is a node restarted empty,
``store.down`` a node that refuses), walked by ``memory_walk`` in place of metadump/SCAN. The
same passes run on real memcached and redis-server nodes in ``test_repair_integration.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock
from django_msm.core.cluster import Cluster
from django_msm.core.envelope import Copy, unpack
from django_msm.core.keys import SessionId, new_id
from django_msm.core.nodes import Node
from django_msm.core.repairstate import RepairState, Survey
from django_msm.ops.autorepair import AutoRepair, Lease, record_state
from django_msm.ops.inspectors import KeyBatch
from django_msm.ops.repair import RepairPass, Resume
from django_msm.runtime import get_config
from django_msm.stores import Store
from django_msm.stores.memory import InMemoryStore

THREE = "n1:10.0.0.1:11211,n2:10.0.0.2:11211,n3:10.0.0.3:11211"
TTL = 3600


def memory_walk(store: Store, prefix: str, timeout: float, cursor: str | None
                ) -> Iterator[KeyBatch]:
    """The keys of an in-memory node, two per batch (so batching is exercised)."""
    assert isinstance(store, InMemoryStore)
    keys = sorted(k for k in store._items if not k.startswith("msm:"))
    for start in range(0, len(keys), 2):
        yield KeyBatch(keys[start:start + 2])


def memory_items(store: Store, timeout: float) -> int:
    assert isinstance(store, InMemoryStore)
    return len(store._items)


def make(spec: str = THREE, **msm: Any) -> tuple[Cluster, FakeClock]:
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec, **msm}):
        config = get_config()
    clock = FakeClock()
    return Cluster(config, clock, {n: InMemoryStore(n, clock) for n in config.nodes}), clock


def node(cluster: Cluster, node_id: str) -> Node:
    return next(n for n in cluster.registry.nodes if n.id == node_id)


def store(cluster: Cluster, node_id: str) -> InMemoryStore:
    found = cluster.registry.stores[node(cluster, node_id)]
    assert isinstance(found, InMemoryStore)
    return found


def held(cluster: Cluster, node_id: str, key: str) -> Copy | None:
    data = store(cluster, node_id)._live(key)
    return None if data is None else unpack(data, cluster.config.signing_keys)


def session(cluster: Cluster, node_id: str, revision: int = 1) -> tuple[SessionId, Copy]:
    sid, copy = new_id(node_id), cluster.copies.new_copy(b'{"n": 1}', TTL, revision)
    assert cluster.copies.add(sid, node(cluster, node_id), copy, TTL)
    return sid, copy


def repair(cluster: Cluster, **options: Any):  # noqa: ANN201
    return RepairPass(cluster, rate=0, walk=memory_walk, items=memory_items, **options).run()


def test_a_pass_restores_both_places_of_a_node_that_came_back_empty() -> None:
    cluster, _ = make()
    mine, copy = session(cluster, "n2")  # primary on n2, backup on n3
    theirs, other = session(cluster, "n1")  # backup on n2
    store(cluster, "n2").clear()
    report = repair(cluster)
    assert held(cluster, "n2", str(mine)) == copy  # the same key: no cookie changes
    assert held(cluster, "n2", f"bak:{theirs}") == other
    assert (report.restored, report.single, report.complete) == (2, 2, True)
    assert repair(cluster, dry_run=True).complete


def test_a_dry_run_counts_and_writes_nothing() -> None:
    cluster, _ = make()
    sid, _ = session(cluster, "n1")
    store(cluster, "n2").clear()
    report = repair(cluster, dry_run=True)
    assert (report.sessions, report.single, report.complete) == (1, 1, False)
    assert held(cluster, "n2", f"bak:{sid}") is None


def test_a_tombstone_anywhere_retires_every_copy_and_is_kept_in_two_places() -> None:
    """A logout while n2 was away left tombstones on n1 and n3, a stale copy on n2."""
    cluster, _ = make()
    sid, copy = session(cluster, "n2")
    store(cluster, "n2").down = True
    cluster.retirement.delete(sid, node(cluster, "n2"), TTL, copy.revision)
    store(cluster, "n2").down = False
    assert held(cluster, "n2", str(sid)) == copy  # stale
    report = repair(cluster)
    assert held(cluster, "n2", str(sid)).is_tombstone  # type: ignore[union-attr]
    assert held(cluster, "n3", f"bak:{sid}").is_tombstone  # type: ignore[union-attr]
    assert held(cluster, "n1", f"bak:{sid}") is None  # outside its two places: removed
    assert report.stale == {"n2": 1} and report.sessions == 0


def test_an_older_revision_is_replaced_by_the_newer_one() -> None:
    cluster, _ = make()
    sid, _ = session(cluster, "n1")
    store(cluster, "n2").down = True
    newer = cluster.copies.new_copy(b'{"n": 2}', TTL, 2)
    cluster.copies.update(sid, node(cluster, "n1"), newer, TTL)  # backup went to n3
    store(cluster, "n2").down = False
    repair(cluster)
    assert held(cluster, "n2", f"bak:{sid}") == newer
    assert held(cluster, "n3", f"bak:{sid}") is None


def test_backups_move_to_a_new_node_order_and_nothing_is_lost() -> None:
    """n4 added between n1 and n2: n1's backups belong on n4 now."""
    cluster, _ = make()
    sid, copy = session(cluster, "n1")
    grown, _ = make("n1:10.0.0.1:11211,n4:10.0.0.4:11211,n2:10.0.0.2:11211,n3:10.0.0.3:11211")
    for node_id in ("n1", "n2", "n3"):  # the same nodes, seen by the new configuration
        grown.registry.stores[node(grown, node_id)] = store(cluster, node_id)
    assert grown.copies.load(sid, node(grown, "n1")).copy == copy  # found before any repair
    repair(grown)
    assert held(grown, "n4", f"bak:{sid}") == copy and held(grown, "n2", f"bak:{sid}") is None


def test_a_draining_node_gets_no_backup_and_loses_the_ones_it_held() -> None:
    cluster, _ = make(DRAINING_NODES="n2")
    assert {cluster.copies.create(cluster.copies.new_copy(b"{}", TTL, 1), TTL, None)[0].node_id
            for _ in range(20)} <= {"n1", "n3"}
    sid, copy = session(cluster, "n1")
    assert held(cluster, "n3", f"bak:{sid}") == copy and held(cluster, "n2", f"bak:{sid}") is None
    store(cluster, "n2").set(f"bak:{sid}", cluster.copies.pack(copy), TTL)  # from before
    repair(cluster)
    assert held(cluster, "n2", f"bak:{sid}") is None


def test_a_retired_nodes_sessions_keep_two_copies_on_the_others() -> None:
    cluster, _ = make()
    sid, copy = session(cluster, "n2")  # backup on n3
    retired, _ = make("n1:10.0.0.1:11211,n3:10.0.0.3:11211", RETIRED_NODES="n2")
    for node_id in ("n1", "n3"):
        retired.registry.stores[node(retired, node_id)] = store(cluster, node_id)
    loaded = retired.copies.load(sid, retired.registry.node_for(sid))
    assert (loaded.copy, loaded.from_backup, loaded.relocate) == (copy, True, True)
    repair(retired)
    assert held(retired, "n1", f"bak:{sid}") == copy == held(retired, "n3", f"bak:{sid}")


class DeletesOnAdd(InMemoryStore):
    """A node where a logout lands between repair's read and its restore: the store deletes
    ``victim`` on ``source`` just before an ``add_versioned`` of ``key``."""

    source: InMemoryStore
    key = victim = ""

    def add_versioned(self, key: str, value: bytes, ttl: int) -> bytes | None:
        if key == self.key:
            self.source.delete(self.victim)
        return super().add_versioned(key, value, ttl)


def test_a_restore_whose_source_was_deleted_meanwhile_is_taken_back() -> None:
    cluster, clock = make()
    sid, _ = session(cluster, "n1")
    racing = DeletesOnAdd(node(cluster, "n2"), clock)
    racing.source, racing.key, racing.victim = store(cluster, "n1"), f"bak:{sid}", str(sid)
    cluster.registry.stores[node(cluster, "n2")] = racing  # n2 came back empty, and racing
    report = repair(cluster)
    assert report.undone == 1 and report.restored == 0
    assert held(cluster, "n2", f"bak:{sid}") is None  # nothing came back to life


def test_a_request_writing_meanwhile_wins() -> None:
    cluster, _ = make()
    sid, _ = session(cluster, "n1")
    stale = cluster.copies.pack(cluster.copies.new_copy(b'{"n": 0}', TTL, 0))
    store(cluster, "n2").set(f"bak:{sid}", stale, TTL)
    pass_ = RepairPass(cluster, rate=0, walk=memory_walk, items=memory_items)
    real = pass_._read

    def read_then_request(node_: Node, keys: list[str]):  # noqa: ANN202
        found = real(node_, keys)
        if node_.id == "n2":  # a request rewrites the backup after repair read it
            store(cluster, "n2").set(f"bak:{sid}", b"the request's", TTL)
        return found

    pass_._read = read_then_request  # type: ignore[method-assign]
    assert pass_.run().raced == 1
    assert store(cluster, "n2")._live(f"bak:{sid}") == b"the request's"


def test_a_pass_keeps_to_its_rate() -> None:
    cluster, _ = make()
    for _ in range(10):
        session(cluster, "n1")
    report = RepairPass(cluster, rate=40, walk=memory_walk, items=memory_items).run()
    assert report.sessions == 10 and report.seconds >= 0.2


def test_a_pass_resumes_after_the_nodes_it_finished() -> None:
    cluster, _ = make()
    sid, _ = session(cluster, "n1")
    store(cluster, "n2").clear()
    report = repair(cluster, resume=Resume(frozenset({"n1", "n2", "n3"})))
    assert report.sessions == 0 and sorted(report.scanned) == ["n1", "n2", "n3"]
    assert held(cluster, "n2", f"bak:{sid}") is None


# -- when a pass is due, and who runs it --------------------------------------------------------
def survey(**fields: Any) -> Survey:
    base: dict[str, Any] = {"topology": ("n1=a", "n2=b"), "reachable": frozenset({"n1", "n2"}),
                            "gens": {"n1": "g1", "n2": "g2"}, "fresh": frozenset(),
                            "away": {}, "state": None}
    return Survey(**{**base, **fields})


def test_a_fresh_cluster_needs_no_pass() -> None:
    assert survey(fresh=frozenset({"n1", "n2"})).needs_repair() == []


def test_a_node_that_lost_its_generation_needs_a_pass() -> None:
    assert survey(fresh=frozenset({"n2"})).needs_repair() == ["node n2 came back empty or is new"]
    state = RepairState(1, ("n1=a", "n2=b"), {"n1": "g1", "n2": "old"})
    assert survey(state=state).needs_repair() == ["node n2 came back empty or is new"]


def test_an_away_token_no_pass_covered_makes_the_node_suspect() -> None:
    seen = survey(away={"n2": frozenset({"t1"})})
    assert seen.uncovered("n2") and seen.needs_repair() == ["node n2 was away"]
    state = RepairState(1, ("n1=a", "n2=b"), {"n1": "g1", "n2": "g2"}, {"n2": ("t1",)})
    assert survey(away={"n2": frozenset({"t1"})}, state=state).needs_repair() == []


def test_a_changed_node_list_needs_a_pass() -> None:
    state = RepairState(1, ("n1=a", "n2=old"), {"n1": "g1", "n2": "g2"})
    assert survey(state=state).needs_repair() == ["the configured nodes changed"]
    assert survey(retiring=True).needs_repair() == ["nodes were retired"]


def test_the_state_record_round_trips_and_ignores_garbage() -> None:
    state = RepairState(3, ("n1=a",), {"n1": "g"}, {"n1": ("t",)}, ("n2",))
    assert RepairState.decode(state.encode()) == state
    assert RepairState.decode(b"{nope") is None and RepairState.decode(None) is None


def test_one_process_at_a_time_holds_the_lease_and_a_dead_holder_is_replaced() -> None:
    cluster, clock = make()
    other = Cluster(cluster.config, clock, dict(cluster.registry.stores))
    first, second = Lease(cluster), Lease(other)
    assert first.acquire() and not second.acquire()
    clock.advance(31)  # the holder was killed: the node expires its lease
    assert second.acquire()
    second.release()
    assert first.acquire()


def test_a_recorded_pass_ends_the_doubt_in_every_process() -> None:
    cluster, clock = make()
    session(cluster, "n1")
    store(cluster, "n2").down = True
    cluster.copies.load(new_id("n2"), node(cluster, "n2"))  # n2 fails: an away token
    store(cluster, "n2").down = False
    clock.advance(5)
    seen = cluster.away.survey(notify=False)
    assert seen.needs_repair() == ["node n2 was away"]
    report = repair(cluster)
    record_state(cluster, seen, report)
    other = Cluster(cluster.config, clock, dict(cluster.registry.stores))
    assert other.away.survey().needs_repair() == []
    assert not other.registry.health[node(other, "n2")].suspect()


def test_automatic_repair_waits_for_quiet_then_runs_once() -> None:
    cluster, clock = make(RETRY_TIMEOUT=0.2, OPERATION_TIMEOUT=0.1)
    sid, copy = session(cluster, "n2")
    cluster.away.survey()  # generations written
    store(cluster, "n2").clear()
    auto = AutoRepair(cluster)
    auto.lease = Lease(cluster)
    assert auto.step() is None  # the marks just changed: wait
    auto._changed -= 1.0  # as if they were quiet since
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django_msm.ops.autorepair.RepairPass",
                      lambda c, **kw: RepairPass(c, walk=memory_walk, items=memory_items,
                                                 **{**kw, "rate": 0}))
        report = auto.step()
        assert report is not None and report.restored == 1
        assert held(cluster, "n2", str(sid)) == copy
        auto._changed -= 1.0
        assert auto.step() is None  # nothing due any more
