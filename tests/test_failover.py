"""NodeHealth with a FakeClock: quarantine, hysteresis, probing and the rejoined mark.

msm marks a node down on one slow reply and relocates every session touched in the next second
(msm #222/#279); these tests pin the hysteresis that avoids that.
"""

from __future__ import annotations

import threading

import pytest

from django_msm.clock import FakeClock
from django_msm.core.health import NodeHealth, NodeState
from django_msm.exceptions import NodeUnavailable


def timeout() -> NodeUnavailable:
    return NodeUnavailable("n1", TimeoutError("timed out"))


def refused() -> NodeUnavailable:
    return NodeUnavailable("n1", ConnectionRefusedError(111, "refused"), refused=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> NodeHealth:
    return NodeHealth("n1", retry_timeout=2.0, retry_attempts=3, clock=clock)


def test_new_node_is_up(health: NodeHealth) -> None:
    assert health.state is NodeState.UP and health.available()
    assert not health.dead and health.failures == 0
    assert health.down_since is None and health.rejoined_at is None
    assert not health.suspect()


def test_one_timeout_quarantines_but_is_not_dead(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(timeout())
    assert health.state is NodeState.QUARANTINED
    assert not health.available()
    assert not health.dead
    assert health.failures == 1
    assert health.down_since == clock.time()
    assert "timed out" in health.last_error


def test_retry_attempts_failures_make_it_dead(health: NodeHealth, clock: FakeClock) -> None:
    first_down = clock.time()
    for expected_dead in (False, False, True, True):
        health.record_failure(timeout())
        assert health.dead is expected_dead
        clock.advance(2.0)
    assert health.failures == 4
    assert health.down_since == first_down  # the outage started with the first failure


def test_refused_connection_is_dead_at_once(health: NodeHealth) -> None:
    health.record_failure(refused())
    assert health.dead
    assert health.failures == 3
    assert "refused" in health.last_error


def test_refused_after_timeouts_keeps_counting(health: NodeHealth) -> None:
    health.record_failure(timeout())
    health.record_failure(timeout())
    health.record_failure(refused())
    assert health.dead and health.failures == 3
    health.record_failure(refused())
    assert health.failures == 4


def test_single_attempt_setting_makes_one_timeout_dead(clock: FakeClock) -> None:
    health = NodeHealth("n1", retry_timeout=1.0, retry_attempts=1, clock=clock)
    health.record_failure(timeout())
    assert health.dead


def test_one_probe_per_retry_timeout(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(timeout())
    clock.advance(1.875)  # binary-exact steps: no float rounding at the boundary
    assert not health.available()
    clock.advance(0.125)
    assert health.available()  # this caller probes
    assert not health.available()  # everyone else keeps skipping the node
    clock.advance(1.0)
    assert not health.available()
    clock.advance(1.0)
    assert health.available()  # the probe never reported back: next interval, next probe
    assert not health.available()


def test_only_one_of_many_threads_probes(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(timeout())
    clock.advance(5.0)
    start = threading.Barrier(16)
    results: list[bool] = []

    def request() -> None:
        start.wait(timeout=10)
        results.append(health.available())

    threads = [threading.Thread(target=request) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 15 + [True]


def test_failed_probe_restarts_the_interval(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(timeout())
    clock.advance(2.0)
    assert health.available()
    clock.advance(1.5)  # the probe took a while, then failed
    health.record_failure(timeout())
    clock.advance(1.75)
    assert not health.available()
    clock.advance(0.25)
    assert health.available()


def test_success_after_quarantine_rejoins(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(refused())
    clock.advance(2.0)
    assert health.available()
    back = clock.time()
    health.record_success()
    assert health.state is NodeState.UP and health.available() and health.available()
    assert not health.dead and health.failures == 0
    assert health.rejoined_at == back


def test_suspect_from_a_failure_until_a_repair_reconciled_the_node(
    health: NodeHealth, clock: FakeClock
) -> None:
    """No clock is compared: coming back, or any time passing, does not end the doubt; only the
    marks read after a repair pass do (``AwayMarks`` sets ``unrepaired``)."""
    health.record_failure(timeout())
    assert health.suspect()
    clock.advance(3.0)
    health.record_success()
    clock.advance(3600.0)
    assert health.state is NodeState.UP and health.suspect()
    health.unrepaired = False
    assert not health.suspect()


def test_success_on_a_healthy_node_sets_no_rejoin(health: NodeHealth) -> None:
    health.record_success()
    assert health.rejoined_at is None and not health.suspect()


def test_second_outage_moves_rejoined_at(health: NodeHealth, clock: FakeClock) -> None:
    health.record_failure(timeout())
    health.record_success()
    first = health.rejoined_at
    clock.advance(60.0)
    health.record_failure(timeout())
    clock.advance(5.0)
    health.record_success()
    assert health.rejoined_at == first + 65.0
    assert health.down_since == first + 60.0
