"""``NodeRegistry.call_many``: one command on each of several nodes, every one sent before any
reply is read (``Store.start``), each answer in its place, health recorded as ``call`` does."""

from __future__ import annotations

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
