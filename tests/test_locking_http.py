"""Issue 4 over HTTP: session locks across real app processes (gunicorn), two real memcached nodes.

Each instance runs one gthread worker, so one process serves many requests of one session at
once, and the two instances share nothing but memcached: whatever serializes them is the lock.
Concurrent read-modify-write requests lose increments without it and lose none with it; auto
mode stops locking what it learnt to be read-only; a process killed while holding a lock blocks
its session no longer than ``LOCK_EXPIRATION``; and every lock wait lands in the statistics.
(The in-process paths, exceptions, 503 and release-by-owner are in ``test_locking.py``.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pytest
from pymemcache.client.base import Client as RawClient

from tests.appservers import AppFleet, AppServer, Browser, request
from tests.servers import MemcachedProcess

pytestmark = pytest.mark.integration

T = TypeVar("T")
CONCURRENT = 40  # increments racing for one session
THREADS = 24  # per instance: all 20 requests an instance gets are in flight at once
STEP = 0.05  # seconds each increment keeps its read-modify-write open
LOCK_WAIT = 30.0  # budget for 40 serialized requests on a loaded 2-core machine
HTTP_TIMEOUT = 60.0  # above LOCK_WAIT: a 503 must arrive as an answer, not a client timeout
READERS = 8
READ_DELAY = 0.5


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    elapsed: float


def start_pair(
    fleet: AppFleet, nodes: Sequence[MemcachedProcess], threads: int, **env: str
) -> list[AppServer]:
    """Instances ``a`` and ``b`` on the same nodes, started side by side to save time."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(fleet.start, name, nodes, threads, **env) for name in "ab"]
        return [future.result() for future in futures]


def call(server: AppServer, path: str, key: str) -> Answer:
    """One request carrying session ``key``; bounded by HTTP_TIMEOUT."""
    started = time.monotonic()
    status, _, raw = request(
        "GET", server.port, path, {"Cookie": f"sessionid={key}"}, timeout=HTTP_TIMEOUT
    )
    elapsed = time.monotonic() - started
    return Answer(status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw}, elapsed)


def all_at_once(calls: Sequence[Callable[[], T]]) -> tuple[list[T], float]:
    """Release every call at once from its own thread; return results and wall time."""
    barrier = threading.Barrier(len(calls) + 1)

    def run(job: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(run, job) for job in calls]
        barrier.wait(timeout=30)
        started = time.monotonic()
        results = [future.result(timeout=HTTP_TIMEOUT + 30) for future in futures]
        return results, time.monotonic() - started


def new_session(server: AppServer) -> str:
    """A session whose counter is 1, created by one increment."""
    browser = Browser()
    reply = browser.get(server, "/slow/count/")
    assert reply.status == 200 and reply.body["count"] == 1, reply
    assert browser.cookie is not None
    return browser.cookie


def full_stats(server: AppServer) -> dict[str, Any]:
    status, _, raw = request("GET", server.port, "/stats/full/")
    assert status == 200, raw
    return json.loads(raw)


def lock_figures(servers: Sequence[AppServer]) -> dict[str, float]:
    """Locks taken and waited for, summed over the instances' own statistics."""
    counted = ("locks_acquired", "lock_timeouts", "locks_expired_before_release")
    figures = dict.fromkeys((*counted, "wait_count", "wait_sum"), 0.0)
    for server in servers:
        stats = full_stats(server)
        counters, wait = stats["counters"], stats["timings"].get("lock_wait", {})
        for name in counted:
            figures[name] += counters.get(name, 0)
        figures["wait_count"] += wait.get("count", 0)
        figures["wait_sum"] += wait.get("sum", 0.0)
    return figures


def race_increments(
    servers: Sequence[AppServer], key: str, path: str, count: int = CONCURRENT, step: float = STEP
) -> int:
    """``count`` increments of one session spread over the instances; return how many stuck."""
    url = f"{path}?delay={step}"
    jobs = [partial(call, servers[i % len(servers)], url, key) for i in range(count)]
    answers, wall = all_at_once(jobs)
    assert [a.status for a in answers] == [200] * count, [a.body for a in answers]
    assert {a.body["key"] for a in answers} == {key}, "the session moved during the race"
    assert {a.body["instance"] for a in answers} == {s.name for s in servers}
    final = call(servers[0], "/slow/read/", key)
    assert final.status == 200, final
    print(f"{path}: {count} concurrent increments in {wall:.2f} s, "
          f"counter went 1 -> {final.body['count']}")
    return int(final.body["count"]) - 1


LOCKED_RACES = {
    "all": ({"MSM_LOCKING": "all"}, "/slow/count/"),
    "auto": ({"MSM_LOCKING": "auto"}, "/slow/count/"),
    "uriPattern": ({"MSM_LOCKING": r"uriPattern:^/slow/count/"}, "/slow/count/"),
    "none+@session_lock": ({"MSM_LOCKING": "none"}, "/slow/locked-count/"),
}


@pytest.mark.parametrize("case", list(LOCKED_RACES))
def test_locked_concurrent_increments_lose_nothing_and_the_wait_is_measured(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet, case: str
) -> None:
    env, path = LOCKED_RACES[case]
    servers = start_pair(fleet, memcached_nodes(2), THREADS, MSM_LOCK_WAIT=str(LOCK_WAIT), **env)
    key = new_session(servers[0])
    increments = race_increments(servers, key, path)
    assert increments == CONCURRENT, f"{case}: {CONCURRENT - increments} increments lost"
    figures = lock_figures(servers)
    print(f"{case}: {figures}")
    assert figures["lock_timeouts"] == figures["locks_expired_before_release"] == 0
    assert figures["locks_acquired"] >= CONCURRENT
    assert figures["wait_count"] >= CONCURRENT
    # 40 requests of STEP seconds each ran one after the other: together they waited far
    # more than one STEP for each other (an unlocked run would wait ~0).
    assert figures["wait_sum"] >= CONCURRENT * STEP


def test_unlocked_concurrent_increments_lose_updates(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    """LOCKING_MODE none (the default): the lost update every session engine has, shown."""
    servers = start_pair(fleet, memcached_nodes(2), THREADS, MSM_LOCKING="none")
    key = new_session(servers[0])
    increments = race_increments(servers, key, "/slow/count/")
    print(f"LOCKING_MODE=none: {CONCURRENT} concurrent increments kept {increments}, "
          f"lost {CONCURRENT - increments}")
    assert increments < CONCURRENT
    assert lock_figures(servers)["locks_acquired"] == 0


SHORT_EXPIRATION = 1.0
SHORT_RACE = 10
SHORT_STEP = 0.4  # well inside SHORT_EXPIRATION


def test_a_lock_lives_for_its_whole_lock_expiration(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    """Requests far shorter than LOCK_EXPIRATION never lose their lock, so never an update.

    Only a request that runs *past* LOCK_EXPIRATION loses it, and its save is then refused
    (README; test_locking.py). memcached counts
    TTLs in whole seconds of its own clock, so a TTL of ``ceil(LOCK_EXPIRATION)`` ends at the
    next tick(s): anywhere from ``LOCK_EXPIRATION - 1`` s to ``LOCK_EXPIRATION`` after it was set.
    """
    servers = start_pair(fleet, memcached_nodes(2), SHORT_RACE, MSM_LOCKING="all",
                         MSM_LOCK_EXPIRATION=str(SHORT_EXPIRATION), MSM_LOCK_WAIT=str(LOCK_WAIT))
    key = new_session(servers[0])
    increments = race_increments(servers, key, "/slow/count/", SHORT_RACE, SHORT_STEP)
    figures = lock_figures(servers)
    print(f"LOCK_EXPIRATION={SHORT_EXPIRATION}, requests of {SHORT_STEP} s: {figures}")
    assert figures["locks_expired_before_release"] == 0, "locks expired under running requests"
    assert increments == SHORT_RACE, f"{SHORT_RACE - increments} increments lost"


def time_reads(servers: Sequence[AppServer], key: str, path: str) -> tuple[float, float]:
    """One read alone, then READERS reads at once over both instances: the two wall times."""
    url = f"{path}?delay={READ_DELAY}"
    one = call(servers[0], url, key)
    assert one.status == 200, one
    jobs = [partial(call, servers[i % len(servers)], url, key) for i in range(READERS)]
    answers, wall = all_at_once(jobs)
    assert [a.status for a in answers] == [200] * READERS, [a.body for a in answers]
    assert {a.body["count"] for a in answers} == {1}
    print(f"{path}: one read {one.elapsed:.2f} s, {READERS} at once {wall:.2f} s")
    return one.elapsed, wall


def test_auto_mode_runs_learnt_read_only_requests_in_parallel(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    servers = start_pair(fleet, memcached_nodes(2), READERS, MSM_LOCKING="auto")
    key = new_session(servers[0])
    for server in servers:  # learn: the first read is locked, and seen to change nothing
        for _ in range(2):
            assert call(server, "/slow/read/", key).status == 200
    locks_before = lock_figures(servers)["locks_acquired"]
    one, wall = time_reads(servers, key, "/slow/read/")
    assert wall < 3 * one, f"{READERS} learnt read-only requests were serialized"
    assert lock_figures(servers)["locks_acquired"] == locks_before, "a learnt read was locked"


def test_all_mode_serializes_reads_unless_the_view_is_marked_readonly(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    servers = start_pair(
        fleet, memcached_nodes(2), READERS, MSM_LOCKING="all", MSM_LOCK_WAIT=str(LOCK_WAIT)
    )
    key = new_session(servers[0])
    one, wall = time_reads(servers, key, "/slow/read/")
    assert wall >= 4 * one, f"{READERS} locked reads overlapped"
    one, wall = time_reads(servers, key, "/slow/readonly-read/")
    assert wall < 3 * one, f"{READERS} @session_readonly reads were serialized"


EXPIRATION = 2.0
# memcached counts expiry in whole seconds on its own clock: a lock set for 2 s is gone after
# more than 1 s and at most 2 s (plus the clock tick), so the lower bound allows one second.
# That early end is a bug of its own (test_a_lock_lives_for_its_whole_lock_expiration); these
# bounds hold with or without its fix, which may keep a dead holder's lock up to 1 s longer.
EARLIEST = EXPIRATION - 1.25
LATEST = EXPIRATION + 1.5  # the wait's last backoff, a request, and a loaded machine


def wait_for_lock(nodes: Sequence[MemcachedProcess], key: str, timeout: float = 10.0) -> float:
    """Poll both nodes (raw client) until the session's lock key exists; return when seen."""
    clients = [RawClient(("127.0.0.1", node.port), connect_timeout=2, timeout=2) for node in nodes]
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(client.get(f"lock:{key}") is not None for client in clients):
                return time.monotonic()
            time.sleep(0.01)
        raise AssertionError(f"the slow request never took the lock of {key}")
    finally:
        for client in clients:
            client.close()


def test_killed_lock_holder_blocks_the_session_at_most_lock_expiration(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    nodes = memcached_nodes(2)
    a, b = start_pair(fleet, nodes, 1, MSM_LOCKING="all",
                      MSM_LOCK_EXPIRATION=str(EXPIRATION), MSM_LOCK_WAIT="10")
    key = new_session(a)
    with ThreadPoolExecutor(1) as pool:
        # Never answered: the process dies mid-request, so the client sees a reset.
        asked_at = time.monotonic()
        holder = pool.submit(call, a, "/slow/read/?delay=20", key)
        try:
            locked_at = wait_for_lock(nodes, key)
        finally:
            a.kill()  # also when the lock never showed: the pool must not wait for the holder
        with pytest.raises(OSError):
            holder.result(timeout=HTTP_TIMEOUT)
    wait_for_lock(nodes, key, timeout=0.5)  # the dead holder's lock outlives it
    answer = call(b, "/slow/count/", key)
    # The lock was taken after asked_at and before locked_at: bound the blocking both ways.
    at_most, at_least = time.monotonic() - asked_at, time.monotonic() - locked_at
    print(f"lock holder killed; the session was blocked {at_least:.2f}-{at_most:.2f} s "
          f"(LOCK_EXPIRATION={EXPIRATION})")
    assert answer.status == 200, answer
    assert answer.body["count"] == 2, answer
    assert at_least >= EARLIEST, "the dead holder's lock was ignored"
    assert at_most <= LATEST, "the dead holder's lock outlived LOCK_EXPIRATION"
    wait = full_stats(b)["timings"]["lock_wait"]
    assert wait["count"] == 1 and EARLIEST - 0.5 <= wait["sum"] <= LATEST, wait
