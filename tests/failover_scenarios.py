"""The node-failure scenarios of issue 2, written once for memcached and Redis nodes alike.

``test_failover_integration.py`` runs them on three memcached processes and
``test_redis_failover.py`` on three redis-server processes. A scenario takes the started nodes
in configured order (the second one is the one that fails) and names them by their own ids, so
the same users, failures and assertions apply to either kind; what only one kind can observe
(its own command counters) stays in that kind's test file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.test import override_settings

from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess
from tests.visitors import (
    Visitor,
    assert_relocated_once_off,
    by_node,
    msm_settings,
    new_visitors,
    pick,
)

Node = MemcachedProcess | RedisProcess

PAUSE_TIMEOUT = 1.0  # OPERATION_TIMEOUT of the pause scenarios
PAUSE_RETRY = 4.0  # RETRY_TIMEOUT: no probe of the stopped node before this has passed
MARGIN = 1.5  # generous: a shared, noisy 2-core machine


def _ids(nodes: Sequence[Node]) -> list[str]:
    return [node.node_id for node in nodes]


def killed_node_loses_no_session_and_relocates_each_once(nodes: Sequence[Node]) -> None:
    """kill -9 of the second node: every user's data intact, each of its sessions moved once."""
    first, dead, third = _ids(nodes)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        users = new_visitors("u", 300)
        groups = by_node(users)
        assert sorted(groups) == sorted(_ids(nodes)), {k: len(v) for k, v in groups.items()}

        nodes[1].kill()
        for user in users:  # the next request of every user: data intact, one write each
            user.check_visit()
        for _ in range(2):  # further requests, read-only and writing: keys stay stable
            for user in users:
                user.check_read()
                user.check_visit()

        assert_relocated_once_off(users, dead=dead, live={first, third})
        assert len(groups[dead]) > 0


def restarted_empty_node_loses_nothing(nodes: Sequence[Node]) -> None:
    """The second node dies and comes back empty: nothing of before or during the outage is lost.

    Users active during the outage move while it is down; dormant ones move after it returned;
    sessions created meanwhile never lived there and stay put. The node is used again. This is
    the request path's own recovery, so automatic repair (which would restore the dormant
    sessions in place, ``test_rolling_restart.py``) is off.
    """
    first, dead, third = _ids(nodes)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0, AUTO_REPAIR=False):
        active = new_visitors("a", 120)
        dormant = new_visitors("d", 60)  # no request at all while the node is down
        nodes[1].kill()
        for user in active:
            user.check_visit()
        during = new_visitors("o", 60)
        assert dead not in by_node(during), "a session was created on the dead node"

        nodes[1].restart_empty()
        assert nodes[1].item_count() == 0
        time.sleep(1.3)  # past RETRY_TIMEOUT: the next call probes the node and finds it back
        everyone = active + dormant + during
        for _ in range(2):
            for user in everyone:
                user.check_read()
                user.check_visit()

        assert_relocated_once_off(active, dead=dead, live={first, third})  # moved while down
        assert_relocated_once_off(dormant, dead=dead, live={first, dead, third})  # moved after
        assert all(user.relocations == 0 for user in during)
        assert nodes[1].item_count() > 0, f"{dead} was not used again after its restart"


# -- SIGSTOP / SIGCONT --------------------------------------------------------------------------
def pause_settings(nodes: Sequence[Node]) -> override_settings:
    return msm_settings(nodes, OPERATION_TIMEOUT=PAUSE_TIMEOUT, RETRY_TIMEOUT=PAUSE_RETRY)


def meet_stopped_node(nodes: Sequence[Node]) -> tuple[list[Visitor], list[Visitor], float]:
    """Create 60 users, SIGSTOP the second node and let one of its users meet it.

    Return the users, the 11 of them (of every node) who will log out while the node is
    stopped, and when the first request's bounded wait ended.
    """
    first_id, stopped_id, third_id = _ids(nodes)
    users = new_visitors("p", 60)
    groups = by_node(users)  # in configured order: backups of the first node live on the second
    leaving = pick(groups, stopped_id, 4) + pick(groups, first_id, 4) + pick(groups, third_id, 3)
    first = groups[stopped_id][0]

    nodes[1].pause()
    start = time.perf_counter()
    first.check_read()  # the first request to meet the stopped node
    waited = first.durations[-1][1]
    assert PAUSE_TIMEOUT / 2 <= waited < PAUSE_TIMEOUT + MARGIN, waited
    return users, leaving, start + waited


def log_out_while_stopped(users: Sequence[Visitor], leaving: Sequence[Visitor], since: float
                          ) -> tuple[list[str], list[tuple[str, Visitor]]]:
    """Log ``leaving`` out, check that nobody waited after ``since``; return the dead keys
    and the moved ones.

    The dead keys are every key of the leavers: none may serve anything again. The moved keys
    are the first keys of the other relocated sessions: they may only lead to the session's
    current key and content (a forward, so a late request of the same user is not logged out).
    """
    gone = [key for user in leaving for key in user.keys]
    moved = [(user.keys[0], user) for user in users if user.relocations and user not in leaving]
    for user in leaving:
        assert user.request("/logout/") == {}
        assert user.key is None
    assert assert_no_wait_after(users, since) >= 60
    return gone, moved


def assert_no_wait_after(visitors: Sequence[Visitor], since: float) -> int:
    """Requests after the first failure did not wait; return how many were held to that.

    A request that starts after RETRY_TIMEOUT may be the one probe of the stopped node and
    wait up to OPERATION_TIMEOUT again (by design), so it is only held to that bound.
    """
    checked = 0
    for visitor in visitors:
        for start, seconds in visitor.durations:
            if start <= since:
                continue
            assert seconds < PAUSE_TIMEOUT + MARGIN, f"{visitor.tag} waited {seconds:.2f}s"
            if start + seconds < since + PAUSE_RETRY - 0.1:
                assert seconds < PAUSE_TIMEOUT / 2, f"{visitor.tag} waited {seconds:.2f}s"
                checked += 1
    return checked


def sleep_past_retry(since: float) -> None:
    """Until the stopped node may be probed again: its first lookup after this finds it back."""
    time.sleep(max(0.0, since + PAUSE_RETRY + 0.3 - time.perf_counter()))
