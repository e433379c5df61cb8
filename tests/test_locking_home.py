"""Issue 12: a session's lock lives on its home node and nowhere else, over in-memory nodes.

Before, the lock lived on "the primary or the first available node after it", so a process that
had quarantined the home took the lock on the next node while a request of another process held
it on the home: both proceeded. Now every process contends at the home; a home that cannot be
asked means no lock at once (the save is fenced at the witness instead, test_witness_memory.py).
"""

from __future__ import annotations

import logging

import pytest

from django_msm.core.config import LockTimeoutPolicy
from django_msm.core.keys import new_id
from django_msm.core.locking import SessionLocker
from django_msm.core.stats import statistics
from django_msm.exceptions import LockTimeout
from tests.test_backup_memory import Cluster, make_cluster

WAIT = 2.0


def locker(cluster: Cluster, policy: str = "fail") -> tuple[SessionLocker, list[float]]:
    """A locker whose sleeps advance the fake clock (and are recorded)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        cluster.clock.advance(seconds)

    config = cluster.parts.config
    assert config.lock_timeout_policy is LockTimeoutPolicy(policy)
    return SessionLocker(cluster.registry, config, cluster.clock, sleep), slept


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster(LOCK_WAIT_TIMEOUT=WAIT)


def lock_items(cluster: Cluster) -> dict[str, list[str]]:
    return {
        node.id: [key for key in cluster.store(node.id)._items if key.startswith("lock:")]
        for node in cluster.registry.nodes
    }


def test_a_quarantined_home_means_no_lock_anywhere_and_no_wait(cluster: Cluster) -> None:
    statistics.reset()
    sid, home = new_id("n1"), cluster.node("n1")
    cluster.timeout("n1")  # this process quarantined the home; another may hold the lock there
    locks, slept = locker(cluster)
    assert locks.acquire_or_raise(sid, home) is None
    assert slept == []
    assert lock_items(cluster) == {"n1": [], "n2": [], "n3": []}
    assert statistics.snapshot()["counters"]["locks_home_unreachable"] == 1


def test_a_lock_held_at_home_is_waited_for_even_when_the_next_node_is_free(
    cluster: Cluster,
) -> None:
    sid, home = new_id("n1"), cluster.node("n1")
    first, _ = locker(cluster)
    held = first.acquire(sid, home)
    assert held is not None and held.node == home
    second, slept = locker(cluster)
    with pytest.raises(LockTimeout) as refused:
        second.acquire_or_raise(sid, home)
    assert sum(slept) == pytest.approx(WAIT)
    assert lock_items(cluster) == {"n1": [f"lock:{sid}"], "n2": [], "n3": []}
    assert str(sid) not in str(refused.value) and "n1" in str(refused.value)


def test_proceeding_without_the_lock_logs_no_session_key(caplog: pytest.LogCaptureFixture) -> None:
    cluster = make_cluster(LOCK_WAIT_TIMEOUT=WAIT, LOCK_TIMEOUT_POLICY="proceed")
    sid, home = new_id("n2"), cluster.node("n2")
    first, _ = locker(cluster, "proceed")
    held = first.acquire(sid, home)
    assert held is not None
    second, _ = locker(cluster, "proceed")
    with caplog.at_level(logging.INFO, logger="django_msm"):
        assert second.acquire_or_raise(sid, home) is None
        cluster.clock.advance(60)  # the lock expires before its holder releases it
        first.release(held)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all("n2" in message for message in messages), messages
    assert not any(sid.base in message for message in messages), messages
