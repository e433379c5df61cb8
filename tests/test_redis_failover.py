"""The engine's failover scenarios (issue 2) on three Redis nodes, seen from HTTP requests.

Users are the ``Visitor`` helpers of ``tests/visitors.py`` (Django test clients through the
stock SessionMiddleware to ``tests/views.py``) and the scenarios shared with memcached are in
``tests/failover_scenarios.py``; only the servers differ: real redis-server processes, looked at
through ``INFO commandstats`` and plain redis-py clients.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from django_msm.core import keys as msm_keys
from django_msm.exceptions import SessionTooLarge
from django_msm.runtime import get_config
from django_msm.session import SessionStore
from tests import failover_scenarios as scenarios
from tests.redis_servers import RedisProcess
from tests.visitors import (
    Visitor,
    assert_forwarded,
    assert_gone,
    assert_relocated_once_off,
    by_node,
    msm_settings,
    new_visitors,
)

pytestmark = pytest.mark.integration

# Commands the stats checks themselves cause: a new connection's handshake, CONFIG RESETSTAT
# and the INFO that reads the counters.
BOOKKEEPING = {"hello", "client|setinfo", "config|resetstat", "info"}


def raw_copies(node: RedisProcess, key: str) -> tuple[Any, Any]:
    """The primary and backup items stored under ``key`` on ``node``, read behind the engine."""
    prefix = get_config().storage_prefix
    client = node.client()
    try:
        return client.get(f"{prefix}{key}"), client.get(f"bak:{prefix}{key}")
    finally:
        client.close()


# -- kill -9 ------------------------------------------------------------------------------------
def test_killed_redis_node_loses_no_session_and_relocates_each_once(redis_nodes) -> None:
    scenarios.killed_node_loses_no_session_and_relocates_each_once(redis_nodes(3))


# -- restart empty ------------------------------------------------------------------------------
def test_redis_node_restarted_empty_loses_nothing_of_before_or_during_the_outage(
    redis_nodes,
) -> None:
    scenarios.restarted_empty_node_loses_nothing(redis_nodes(3))


def test_redis_node_restarted_without_anyone_noticing_serves_backups(redis_nodes) -> None:
    """A restart between two requests: a live primary that misses, not a node error."""
    nodes = redis_nodes(3)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        users = new_visitors("q", 90)
        on_r2 = by_node(users)["r2"]
        nodes[1].restart_empty()
        for _ in range(2):
            for user in users:
                user.check_read()
                user.check_visit()
        assert_relocated_once_off(users, dead="r2", live={"r1", "r2", "r3"})
        assert on_r2, "no session was on the restarted node"


# -- SIGSTOP / SIGCONT --------------------------------------------------------------------------
def test_stopped_redis_node_bounded_wait_no_logout_and_no_resurrection(redis_nodes) -> None:
    nodes = redis_nodes(3)
    with scenarios.pause_settings(nodes):
        try:
            users, leaving, since = scenarios.meet_stopped_node(nodes)
            for user in users:
                user.check_read()
                user.check_visit()
            gone, moved = scenarios.log_out_while_stopped(users, leaving, since)
        finally:
            nodes[1].resume()

        nodes[1].reset_stats()
        scenarios.sleep_past_retry(since)
        staying = [user for user in users if user not in leaving]
        for user in staying:
            user.check_read()
        for key in gone:  # old keys on r2 are read there, and checked against their backups
            assert_gone(key)
        for key, user in moved:
            assert_forwarded(key, user)
        for user in staying:
            user.check_visit()
        stats = nodes[1].commandstats()
        assert stats.get("get", 0) > 0, f"r2 was never read after SIGCONT: {stats}"
        assert stats.get("set", 0) > 0, f"r2 took no backup after SIGCONT: {stats}"


# -- hostile keys -------------------------------------------------------------------------------
HOSTILE_KEYS = [
    "a b",
    "x\r\nFLUSHALL\r\n",
    f"{'a' * 32}-r1\r\nFLUSHALL",
    "*1\r\n$8\r\nFLUSHALL\r\n",
    "k" * 300,
    f"{'a' * 32}-zz9",  # unknown node
    f"{'A' * 32}-r1",  # upper case is not the key alphabet
    "ключ-r1",
    f"{'a' * 31}\x00-r1",
    "",
    "../../r1",
]


def test_hostile_keys_reach_no_redis_node(redis_nodes) -> None:
    nodes = redis_nodes(3)
    with msm_settings(nodes):
        owner = new_visitors("h", 3)[0]
        for node in nodes:
            node.reset_stats()
        for key in HOSTILE_KEYS:
            store = SessionStore(key)
            assert store.load() == {}
            assert store.exists(key) is False
            store.delete(key)
            visitor = Visitor("hostile")
            # As a WSGI server passes a header: its UTF-8 bytes, decoded as ISO-8859-1.
            wire = key.encode().decode("iso-8859-1")
            visitor.client.cookies[settings.SESSION_COOKIE_NAME] = wire
            assert visitor.read() == {}
        for node in nodes:
            stats = node.commandstats()
            assert set(stats) <= BOOKKEEPING, f"{node.node_id} saw {stats}"

        owner.check_read()  # the control: a real key does reach its node
        node_id = msm_keys.parse(owner.key).node_id  # type: ignore[union-attr]
        node = next(node for node in nodes if node.node_id == node_id)
        assert node.commandstats().get("get", 0) >= 1


# -- too large ----------------------------------------------------------------------------------
LARGE = 1_500_000


def test_too_large_session_fails_loudly_and_keeps_the_stored_copy(redis_nodes) -> None:
    nodes = redis_nodes(3)
    with msm_settings(nodes):
        user = new_visitors("big", 1)[0]
        key = user.key
        assert key is not None
        before = {node.node_id: raw_copies(node, key) for node in nodes}
        with pytest.raises(SessionTooLarge, match=r"over the MAX_SESSION_SIZE limit of 1000000"):
            user.client.get("/big/", {"size": LARGE})
        assert {node.node_id: raw_copies(node, key) for node in nodes} == before
        assert sum(copy is not None for pair in before.values() for copy in pair) == 2
        user.check_read()  # the previous copy loads, data intact, same key
        assert user.key == key


def test_redis_stores_sessions_past_memcacheds_item_limit_when_allowed(redis_nodes) -> None:
    """Redis has no 1 MB item limit: MAX_SESSION_SIZE is the only bound."""
    nodes = redis_nodes(2)
    with msm_settings(nodes, MAX_SESSION_SIZE=4_000_000):
        user = Visitor("large")
        assert user.request("/big/", size=LARGE) == {"big_length": LARGE}
        reader = Visitor("reader")
        reader.client.cookies[settings.SESSION_COOKIE_NAME] = user.key or ""
        assert reader.read() == {"big_length": LARGE}
        assert sum(raw_copies(node, reader.key or "") != (None, None) for node in nodes) == 2
