"""``NodeRegistry.call_many``: one command on each of several nodes, every one sent before any
reply is read (``Store.start``), each answer in its place, health recorded as ``call`` does."""

from __future__ import annotations

from typing import Any

from django_msm.core.health import NodeState
from django_msm.exceptions import NodeUnavailable
from tests.test_backup_memory import TTL, Cluster, make_cluster


def test_each_answer_is_in_its_place_and_a_dead_node_answers_node_unavailable() -> None:
    cluster: Cluster = make_cluster()
    registry = cluster.registry
    n1, n2, n3 = (cluster.node(n) for n in ("n1", "n2", "n3"))
    cluster.store("n2").down = True
    answers = registry.call_many([
        (n1, "add", ("k", b"v", TTL)), (n2, "add", ("k", b"v", TTL)),
        (n3, "get_versioned", ("k",)),
    ])
    assert answers[0] is True and answers[2] == (None, None)
    assert isinstance(answers[1], NodeUnavailable)
    assert registry.health[n2].state is NodeState.QUARANTINED
    assert registry.health[n1].state is NodeState.UP and registry.health[n1].failures == 0
    cluster.store("n2").down = False
    cluster.forget_calls()
    again = registry.call_many([(n2, "get", ("k",)), (n1, "get", ("k",))])
    assert isinstance(again[0], NodeUnavailable) and again[1] == b"v"
    assert cluster.calls()["n2"] == []  # quarantined: not asked, as ``call`` would not ask it


def test_a_command_that_raises_otherwise_raises_after_every_reply_was_read() -> None:
    cluster: Cluster = make_cluster()
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    try:
        cluster.registry.call_many([(n1, "no_such_method", ()), (n2, "add", ("k", b"v", TTL))])
    except AttributeError:
        pass
    else:
        raise AssertionError("the error was swallowed")
    assert cluster.store("n2").get("k") == b"v"


def _batches(cluster: Cluster) -> list[tuple[str, list[str]]]:
    """Record every ``start_many`` of the cluster's stores: (node id, the methods sent)."""
    seen: list[tuple[str, list[str]]] = []
    for node in cluster.registry.nodes:
        store = cluster.store(node.id)

        def spy(commands: list[Any], store: Any = store, inner: Any = store.start_many) -> Any:
            seen.append((store.node.id, [method for method, _ in commands]))
            return inner(commands)

        store.start_many = spy  # type: ignore[method-assign]
    return seen


def test_a_deferred_batch_leaves_with_the_next_batch_in_one_write_per_node() -> None:
    """A login's index reads wait for the session's write: on each node, one ``start_many``."""
    cluster: Cluster = make_cluster()
    registry, (n1, n2) = cluster.registry, (cluster.node("n1"), cluster.node("n2"))
    batches = _batches(cluster)
    ahead = registry.send_many(
        [(n1, "get_versioned", ("a",)), (n2, "get_versioned", ("b",))], defer=True)
    assert batches == [] and cluster.calls()["n1"] == []  # nothing sent yet
    answers = registry.call_many([(n1, "add", ("k", b"v", TTL)), (n2, "add", ("k", b"v", TTL))])
    assert answers == [True, True]
    assert batches == [("n1", ["get_versioned", "add"]), ("n2", ["get_versioned", "add"])]
    assert ahead.answers() == [(None, None), (None, None)]
    assert len(batches) == 2  # read, not sent again


def test_a_deferred_batch_leaves_when_answered_or_before_a_call_and_never_once_dropped() -> None:
    cluster: Cluster = make_cluster()
    registry = cluster.registry
    n1, n2, n3 = (cluster.node(n) for n in ("n1", "n2", "n3"))
    batches = _batches(cluster)
    alone = registry.send_many([(n1, "get_versioned", ("a",))], defer=True)
    assert alone.answers() == [(None, None)] and batches == [("n1", ["get_versioned"])]
    before_call = registry.send_many([(n2, "add", ("b", b"v", TTL))], defer=True)
    assert registry.call(n1, lambda store: store.get("b")) is None
    assert batches[-1] == ("n2", ["add"])  # it left before this thread waited on n1
    assert before_call.answers() == [True]
    dropped = registry.send_many([(n3, "add", ("c", b"v", TTL))], defer=True)
    dropped.settle()
    registry.call_many([(n1, "get", ("c",))])
    assert [node for node, _ in batches].count("n3") == 0
    assert cluster.store("n3").get("c") is None
    assert isinstance(dropped.answers()[0], NodeUnavailable)  # abandoned, never sent


def test_a_node_that_fails_to_take_a_batch_answers_node_unavailable_for_each_command() -> None:
    cluster: Cluster = make_cluster()
    registry, n1, n2 = cluster.registry, cluster.node("n1"), cluster.node("n2")
    cluster.store("n1").down = True
    registry.send_many([(n1, "get_versioned", ("a",))], defer=True)
    answers = registry.call_many([(n1, "add", ("k", b"v", TTL)), (n2, "add", ("k", b"v", TTL))])
    assert isinstance(answers[0], NodeUnavailable) and answers[1] is True
    assert registry.health[n1].state is NodeState.QUARANTINED
