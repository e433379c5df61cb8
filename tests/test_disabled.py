"""Issue 3, ``ENABLED=False``: plain process-local sessions for development, no node touched.

The configured memcached is real and running, so a disabled engine that still talked to it would
show up in the server's own counters (connections and commands).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import override_settings

from django_msm.core import keys as msm_keys
from django_msm.session import SessionStore
from tests.appservers import AppFleet, Browser
from tests.servers import MemcachedProcess, NodeStats

pytestmark = pytest.mark.integration

# What a node would count if anything reached it (NodeStats itself keeps one open connection).
SERVER_COUNTERS = ("total_connections", "cmd_get", "cmd_set", "cmd_touch", "delete_misses",
                   "delete_hits", "total_items", "bytes_read")


def server_counters(stats: NodeStats) -> dict[str, int]:
    snapshot = stats.read()
    return {name: snapshot[name] for name in SERVER_COUNTERS}


def test_disabled_sessions_live_in_the_app_process(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    [node] = memcached_nodes(1)
    stats = NodeStats(node.port)
    try:
        before = server_counters(stats)
        app = fleet.start("dev", [node], MSM_ENABLED="0", MSM_STICKY="1", MSM_ROUTE="web1")
        user = Browser()
        for expected in range(1, 6):
            assert user.get(app, f"/count/?item=i{expected}").body["count"] == expected
        key = user.cookie
        assert msm_keys.parse(key) is not None
        assert user.get(app, "/read/").body["cart"] == [f"i{n}" for n in range(1, 6)]
        # Process-local: another disabled process does not know the session.
        other = fleet.start("dev2", [node], MSM_ENABLED="0")
        assert user.get(other, "/read/").body["count"] == 0
        after = server_counters(stats)
    finally:
        stats.close()
    assert after["bytes_read"] > before["bytes_read"]  # our own stats commands were received
    after["bytes_read"] = before["bytes_read"]
    assert after == before, "a disabled engine reached memcached"


def test_disabled_engine_in_process_touches_no_node(
    memcached_nodes: Callable[..., list[MemcachedProcess]],
) -> None:
    [node] = memcached_nodes(1)
    stats = NodeStats(node.port)
    try:
        before = server_counters(stats)
        msm = {"ENABLED": False, "MEMCACHED_NODES": node.spec, "STICKY": True}
        with override_settings(DJANGO_MSM=msm):
            store = SessionStore()
            store["cart"] = ["apple"]
            store.save()
            again = SessionStore(store.session_key)
            assert again["cart"] == ["apple"]
            again["cart"].append("pear")
            again.save()
            assert SessionStore(store.session_key)["cart"] == ["apple", "pear"]
            again.delete()
            assert not SessionStore(store.session_key).exists(store.session_key)
        after = server_counters(stats)
    finally:
        stats.close()
    after["bytes_read"] = before["bytes_read"]
    assert after == before, "a disabled engine reached memcached"
