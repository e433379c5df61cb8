"""Issue 12, item 1: ``LOCKING_MODE = "all"`` must keep every acknowledged update and never fork a
session while a node pauses (SIGSTOP, a hung node) or dies and comes back empty (kill -9).

Real processes: three memcached nodes and two gunicorn app instances of eight threads each that
share nothing but the nodes, so each keeps its own view of node health. Sixteen clients increment
the counters of twenty users' sessions; every 200 is an acknowledgement of the counter value it
names. The node holding the most primary copies fails mid-run, for three seconds. Afterwards:

* lost: per user, acknowledged increments minus the counter read back through the user's cookie;
* forked: a key that requests moved to two different new keys (a response whose cookie differs
  from the key its view saw is a move), or a user whose session can be loaded under more than
  one key at the end (every key stored on a node or ever handed out is resolved through the
  app, following the cookies it sends back);
* logged out or switched: a 200 without the user's own data, or a deleted cookie;
* no 500 (503, a lock not had in time, is an honest refusal and is only counted).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.appservers import AppFleet, AppServer
from tests.fault_load import Ledger, Load, ask, live_keys, wait_until
from tests.servers import MemcachedProcess

pytestmark = pytest.mark.integration

USERS = 20
CLIENTS = 16
THREADS = 8  # per app instance
WORK = 0.05  # seconds each increment spends in its view, as a real view does
OUTAGE = 3.0  # seconds the node is paused, or dead before it restarts
WARMUP = 150  # acknowledgements before the fault: every user is in flight
AFTERWARDS = 300  # acknowledgements after the node is back
LOAD_TIMEOUT = 90.0  # bound on each phase on a busy two-core machine
ENV = {
    "MSM_LOCKING": "all",
    "MSM_LOCK_WAIT": "10",  # >= LOCK_EXPIRATION (5 s): a lock outlived by its holder is had
    "MSM_OPERATION_TIMEOUT": "0.5",
    "MSM_RETRY_TIMEOUT": "0.5",
}


def start_apps(fleet: AppFleet, nodes: Sequence[MemcachedProcess]) -> list[AppServer]:
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(fleet.start, name, nodes, THREADS, **ENV) for name in "ab"]
        return [future.result() for future in futures]


def open_sessions(servers: Sequence[AppServer], ledger: Ledger) -> list[str]:
    """One session per user, its lineage stored in it from the first request."""
    lineages = [f"user{number:02d}" for number in range(USERS)]
    for number, lineage in enumerate(lineages):
        answer = ask(servers[number % 2], f"/fault/start/?lineage={lineage}", None)
        assert answer.status == 200 and answer.cookie, answer
        ledger.cookies[lineage] = answer.cookie
        ledger.seen.add(answer.cookie)
    return lineages


def busiest(nodes: Sequence[MemcachedProcess], ledger: Ledger) -> MemcachedProcess:
    """The node named by most session keys (a key ends with its primary node's id)."""
    named = Counter(cookie.rsplit("-", 1)[1] for cookie in ledger.cookies.values())
    return max(nodes, key=lambda node: named[node.node_id])


def pause(node: MemcachedProcess) -> None:
    node.pause()
    time.sleep(OUTAGE)  # the outage itself: its length is the scenario, not a wait
    node.resume()


def kill_and_restart(node: MemcachedProcess) -> None:
    node.kill()
    time.sleep(OUTAGE)
    node.start()  # same port, no data: a rebooted node


def final_counts(server: AppServer, ledger: Ledger, lineages: Sequence[str]) -> dict[str, int]:
    """Each user's counter, read through the user's own cookie."""
    counts = {}
    for lineage in lineages:
        answer = ask(server, "/fault/read/", ledger.cookie(lineage))
        ledger.record(lineage, answer, increment=False)
        assert answer.status == 200, f"{lineage}: final read answered {answer.status}"
        counts[lineage] = answer.count if answer.lineage == lineage else 0
    return counts


def run_under_fault(
    servers: Sequence[AppServer], nodes: Sequence[MemcachedProcess],
    fault: Callable[[MemcachedProcess], None],
) -> tuple[Ledger, list[str]]:
    ledger = Ledger()
    lineages = open_sessions(servers, ledger)
    victim = busiest(nodes, ledger)
    load = Load(servers, ledger, lineages, f"/fault/increment/?work={WORK}")
    load.start(CLIENTS)
    try:
        wait_until(lambda: ledger.acknowledged() >= WARMUP, LOAD_TIMEOUT, "the warm-up")
        fault(victim)
        mark = ledger.acknowledged()
        wait_until(lambda: ledger.acknowledged() >= mark + AFTERWARDS, LOAD_TIMEOUT,
                   "acknowledgements after the node came back")
    finally:
        load.finish()
    return ledger, lineages


def refusals(servers: Sequence[AppServer]) -> dict[str, int]:
    """Why requests were refused, from the instances' own statistics (shown, not asserted)."""
    names = ("lock_timeouts", "save_conflicts", "relocations_refused", "locks_home_unreachable")
    counters = [server.counters() for server in servers]
    return {name: sum(c.get(name, 0) for c in counters) for name in names}


@pytest.mark.parametrize("fault", [pause, kill_and_restart], ids=["pause", "kill-restart"])
def test_locked_sessions_lose_no_update_and_never_fork_when_a_node_fails(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet,
    fault: Callable[[MemcachedProcess], None],
) -> None:
    nodes = memcached_nodes(3)
    servers = start_apps(fleet, nodes)
    ledger, lineages = run_under_fault(servers, nodes, fault)
    finals = final_counts(servers[0], ledger, lineages)
    lives = live_keys(servers[1], nodes, ledger.seen)
    lost = sum(max(0, len(ledger.acks[u]) - finals[u]) for u in lineages)
    unacked = sum(max(0, finals[u] - len(ledger.acks[u])) for u in lineages)
    forked = sorted(u for u in lineages if len(lives.get(u, ())) > 1)
    gone = sorted(u for u in lineages if not lives.get(u))
    figures = (
        f"{fault.__name__}: {ledger.acknowledged()} acknowledged, {lost} lost, "
        f"{unacked} committed unacknowledged, {ledger.duplicates()} acknowledged twice, "
        f"{ledger.forked_keys()} keys moved twice, {len(forked)} users with two live keys "
        f"{forked}, {len(gone)} gone, {ledger.logouts} logouts, "
        f"{ledger.switched} switched, statuses {dict(ledger.statuses)}, "
        f"{len(ledger.errors)} client errors {ledger.errors[:3]}; engine: {refusals(servers)}"
    )
    print(figures)
    assert lost == 0 and not forked and not gone and ledger.forked_keys() == 0, figures
    assert ledger.logouts == ledger.switched == 0, figures
    assert set(ledger.statuses) <= {200, 503} and not ledger.errors, figures
    assert ledger.duplicates() == 0 and unacked == 0, figures
