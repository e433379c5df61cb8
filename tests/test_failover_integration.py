"""Issue 2: node failures seen from HTTP requests, on real memcached processes.

Simulated users are the ``Visitor`` helpers of ``tests/visitors.py``: ``django.test.Client``
instances carrying their own session cookie through Django's stock ``SessionMiddleware`` to the
views in ``tests/views.py``. The scenarios shared with Redis nodes are in
``tests/failover_scenarios.py``; memcached is looked at through its own ``stats`` and raw clients.
"""

from __future__ import annotations

import time

import pytest

from django_msm.core.envelope import unpack
from django_msm.runtime import get_config, reset_registry
from tests import failover_scenarios as scenarios
from tests.servers import (
    MemcachedProcess,
    node_stats,  # also imported from here by test_msm_status.py
    raw_client,
    raw_get,
)
from tests.visitors import (
    Visitor,
    assert_forwarded,
    assert_gone,
    by_node,
    msm_settings,
    new_visitors,
    node_of,
)

pytestmark = pytest.mark.integration


# -- kill -9 ------------------------------------------------------------------------------------
def test_killed_node_loses_no_session_and_relocates_each_once(memcached_nodes) -> None:
    scenarios.killed_node_loses_no_session_and_relocates_each_once(memcached_nodes(3))


def test_node_restarted_empty_loses_nothing_of_before_or_during_the_outage(
    memcached_nodes,
) -> None:
    scenarios.restarted_empty_node_loses_nothing(memcached_nodes(3))


def test_restarted_node_is_probed_and_used_again(memcached_nodes) -> None:
    """After RETRY_TIMEOUT the next request that needs the node probes it and finds it back.

    A new session is created first: choosing its node must not use up the probe.
    """
    nodes = memcached_nodes(3)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        on_n1 = by_node(new_visitors("r", 30))["n1"]  # their backups belong on n2
        nodes[1].kill()
        on_n1[0].check_visit()  # meets the dead node; the backup goes to n3
        nodes[1].restart_empty()
        time.sleep(1.3)  # past RETRY_TIMEOUT
        Visitor("newcomer").check_visit()
        for user in on_n1:
            user.check_visit()
        missing = [user.key for user in on_n1 if raw_get(nodes[1], f"bak:{user.key}") is None]
        assert not missing, f"backups not written to the restarted n2: {missing}"


# -- SIGSTOP ------------------------------------------------------------------------------------
def test_stopped_node_bounded_wait_no_logout_and_no_resurrection(memcached_nodes) -> None:
    nodes = memcached_nodes(3)
    with scenarios.pause_settings(nodes):
        users, leaving, since = scenarios.meet_stopped_node(nodes)
        for index, user in enumerate(users):  # nobody is logged out
            user.check_read()
            if index % 2:
                user.check_visit()  # a change moves a session off the stopped node
        gone, moved = scenarios.log_out_while_stopped(users, leaving, since)
        readers = [user for user in users[::2] if user not in leaving]
        assert all(user.relocations == 0 for user in readers), "one timeout moved sessions"

        nodes[1].resume()
        scenarios.sleep_past_retry(since)
        gets = node_stats(nodes[1].port)["cmd_get"]  # after n2 ran what was queued meanwhile
        for key in gone:  # the first lookup probes n2 and finds it back, old copies and all
            assert_gone(key)
        for key, user in moved:
            assert_forwarded(key, user)
        assert node_stats(nodes[1].port)["cmd_get"] > gets, "n2 was not consulted after SIGCONT"
        for user in users:
            if user not in leaving:
                user.check_read()
                user.check_visit()


# -- where copies live --------------------------------------------------------------------------
def remaining_ttl(node: MemcachedProcess, key: str) -> int | None:
    """Seconds until ``key`` expires on ``node`` (meta command ``mg <key> t``); None if absent."""
    with raw_client(node) as client:
        reply = client.raw_command(f"mg {key} t".encode(), end_tokens=b"\r\n")
    if not reply.startswith(b"HD"):
        return None
    flag = next(part for part in reply.split() if part.startswith(b"t"))
    return int(flag[1:])


def test_backup_lives_on_the_next_node_in_configured_order(memcached_nodes) -> None:
    n1, n2, n3 = memcached_nodes(3)
    ordered = [n2, n3, n1]  # configured order, deliberately not the ids' order
    following = {"n2": n3, "n3": n1, "n1": n2}
    with msm_settings(ordered):
        users = new_visitors("b", 45)
        assert sorted(by_node(users)) == ["n1", "n2", "n3"]
        for user in users:
            key = user.key
            primary = {"n1": n1, "n2": n2, "n3": n3}[node_of(key)]
            backup = following[node_of(key)]
            (other,) = {n1, n2, n3} - {primary, backup}
            stored = raw_get(primary, key)
            assert stored is not None
            assert raw_get(backup, f"bak:{key}") == stored, f"backup of {key} not on {backup.spec}"
            assert raw_get(other, key) is None and raw_get(other, f"bak:{key}") is None
            assert raw_get(primary, f"bak:{key}") is None and raw_get(backup, key) is None


def test_deleted_session_leaves_no_copy_anywhere(memcached_nodes) -> None:
    """Only the witness's tombstone stays (issue 12): no copy of the session's data."""
    nodes = memcached_nodes(3)
    following = {"n1": nodes[1], "n2": nodes[2], "n3": nodes[0]}
    with msm_settings(nodes):
        users = new_visitors("x", 30)
        for user in users:
            user.check_visit()  # a second revision, so both copies were rewritten once
        keys = [user.key for user in users]
        for user in users:
            assert user.request("/logout/") == {}
            assert user.key is None
        signing = get_config().signing_keys
        for key in keys:
            witness = following[node_of(key)]
            for node in nodes:
                assert raw_get(node, key) is None, f"{key} left on {node.spec}"
                if node is not witness:
                    assert raw_get(node, f"bak:{key}") is None, f"bak:{key} on {node.spec}"
            tombstone = unpack(raw_get(witness, f"bak:{key}"), signing)
            assert tombstone.is_tombstone and tombstone.payload == b""
            assert_gone(key)


def test_expiry_beyond_thirty_days_is_kept_on_both_copies(memcached_nodes) -> None:
    nodes = memcached_nodes(3)
    forty_days = 40 * 24 * 3600
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        user = Visitor("long")
        user.request("/expire/", seconds=forty_days, note="forty days")
        data = user.read()
        assert data["note"] == "forty days"
        key = user.key
        nodes_by_id = {node.node_id: node for node in nodes}
        primary = nodes_by_id[node_of(key)]
        backup = nodes[(nodes.index(primary) + 1) % 3]
        for node, stored_key in ((primary, key), (backup, f"bak:{key}")):
            ttl = remaining_ttl(node, stored_key)
            assert ttl is not None and abs(ttl - forty_days) < 120, (stored_key, ttl)

        primary.kill()
        assert user.read()["note"] == "forty days"  # served from the backup copy


# -- a node that comes back holds stale copies ---------------------------------------------------
@pytest.mark.parametrize("fresh_process", [False, True], ids=["same_process", "fresh_process"])
def test_backups_written_around_a_stopped_node_are_not_shadowed_after_it_returns(
    memcached_nodes, fresh_process: bool
) -> None:
    """Backups of n1 move to n3 while n2 is stopped; n2 returns with the older ones.

    When n1 then dies, the newer copy on n3 must be the one served, not n2's stale one, also
    by an app server that never saw n2 stop (a fresh registry: started after the heal).
    """
    nodes = memcached_nodes(3)
    with msm_settings(nodes, OPERATION_TIMEOUT=0.5, RETRY_TIMEOUT=1.0):
        users = new_visitors("s", 45)
        on_n1 = by_node(users)["n1"]
        nodes[1].pause()
        for user in on_n1:
            user.check_visit()  # backup written to n3, n2 skipped
        nodes[1].resume()
        time.sleep(1.3)  # past RETRY_TIMEOUT
        for user in by_node(users)["n2"]:
            user.check_read()  # probes n2: it is back in this process's view
        if fresh_process:
            reset_registry()
        nodes[0].kill()
        for user in on_n1:
            user.check_read()


def test_logout_while_stopped_stays_logged_out_for_a_process_started_after(
    memcached_nodes,
) -> None:
    """Another app server (a fresh registry) never saw n2 stop; it must not resurrect either."""
    nodes = memcached_nodes(3)
    with msm_settings(nodes, OPERATION_TIMEOUT=0.5, RETRY_TIMEOUT=1.0):
        users = new_visitors("f", 45)
        leaving = by_node(users)["n2"]
        keys = [user.key for user in leaving]
        nodes[1].pause()
        for user in leaving:
            assert user.request("/logout/") == {}
        nodes[1].resume()
        reset_registry()  # a process started after the heal: no memory of the outage
        for key in keys:
            assert_gone(key)
