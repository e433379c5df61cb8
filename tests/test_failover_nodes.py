"""Issue 3, ``FAILOVER_NODES`` as msm documents it (§2.4), with real app and memcached processes.

Each app host lists the memcached on its own machine as its failover node, so its sessions live
on the other machine and survive the loss of either. The failover node takes new or relocated
sessions only while every regular node is down, and sessions return to a regular node as soon as
one is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.appservers import AppFleet, AppServer, Browser
from tests.servers import MemcachedProcess, raw_get
from tests.visitors import node_of

pytestmark = pytest.mark.integration

SESSIONS = 20
RETRY_TIMEOUT = 0.5  # the app's RETRY_TIMEOUT: how soon a dead node is probed again


def primary_exists(node: MemcachedProcess, key: str) -> bool:
    return raw_get(node, key) is not None


def start_host(fleet: AppFleet, nodes: list[MemcachedProcess]) -> AppServer:
    """An app host whose own memcached, n1, is its failover node (msm's documented topology)."""
    return fleet.start(
        "web1", nodes, MSM_STICKY="1", MSM_ROUTE="web1", MSM_FAILOVER="n1",
        MSM_RETRY_TIMEOUT=str(RETRY_TIMEOUT),
    )


def open_sessions(app: AppServer, count: int, tag: str) -> list[Browser]:
    browsers = [Browser() for _ in range(count)]
    for index, browser in enumerate(browsers):
        assert browser.get(app, f"/count/?item={tag}{index}").body["count"] == 1
    return browsers


def strand_on_failover_node(app: AppServer, n2: MemcachedProcess) -> list[Browser]:
    """Open sessions (all on n2), kill n2, and move every one of them to n1 (checked)."""
    browsers = open_sessions(app, SESSIONS, "u")
    assert {node_of(b.cookie) for b in browsers} == {"n2"}  # never the failover node
    n2.kill()
    time.sleep(RETRY_TIMEOUT * 2)
    for index, browser in enumerate(browsers):
        reply = browser.get(app, f"/count/?item=v{index}")
        assert (reply.body["count"], reply.body["cart"]) == (2, [f"u{index}", f"v{index}"])
        assert node_of(browser.cookie) == "n1"
    return browsers


def test_failover_node_takes_sessions_only_while_regular_nodes_are_down(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    n1, n2 = nodes = memcached_nodes(2)
    app = start_host(fleet, nodes)
    browsers = open_sessions(app, SESSIONS, "u")
    assert {node_of(b.cookie) for b in browsers} == {"n2"}  # 20 of 20: not chance

    n2.kill()
    carts = [[f"u{index}"] for index in range(SESSIONS)]
    for index, browser in enumerate(browsers):
        # Half of the users only read. Every one keeps its data at once; a session that
        # changes moves at once, a read-only one once the node is known dead (hysteresis).
        writes = index % 2 == 0
        reply = browser.get(app, f"/count/?item=v{index}" if writes else "/read/")
        carts[index] += [f"v{index}"] if writes else []
        assert (reply.body["count"], reply.body["cart"]) == (len(carts[index]), carts[index])
        if writes:
            assert reply.set_cookie is not None and node_of(reply.set_cookie) == "n1"
    time.sleep(RETRY_TIMEOUT * 2)  # the next request probes n2: refused, so it is dead
    for index, browser in enumerate(browsers):
        reply = browser.get(app, "/read/")
        assert (reply.body["count"], reply.body["cart"]) == (len(carts[index]), carts[index])
        assert node_of(browser.cookie) == "n1", (index, reply)
        assert primary_exists(n1, browser.cookie or "")
    assert {node_of(b.cookie) for b in open_sessions(app, 5, "down")} == {"n1"}
    for browser in browsers:  # settled: no further moves while n2 stays down
        assert browser.get(app, "/read/").set_cookie is None


def stranded_until_n2_returns(
    fleet: AppFleet, nodes: list[MemcachedProcess]
) -> tuple[AppServer, list[Browser]]:
    """A host whose sessions were stranded on its failover node n1 while n2 was down; then n2
    starts again (empty, on the same port) and its quarantine runs out."""
    app = start_host(fleet, nodes)
    stranded = strand_on_failover_node(app, nodes[1])
    nodes[1].start()  # back, empty, on the same port
    time.sleep(RETRY_TIMEOUT * 2)  # let the quarantine run out (bounded, a few tenths)
    return app, stranded


def test_regular_node_back_takes_new_sessions_and_those_on_the_failover_node(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    """The issue's sequence: n2 returns; new sessions go to it, then the stranded ones follow."""
    n1, _ = nodes = memcached_nodes(2)
    app, stranded = stranded_until_n2_returns(fleet, nodes)
    newcomers = open_sessions(app, SESSIONS, "new")
    assert {node_of(b.cookie) for b in newcomers} == {"n2"}
    assert_move_back(app, n1, stranded)


def test_sessions_on_failover_node_move_back_on_read_only_requests(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    """Same, with only read-only traffic after n2's return: nothing else will probe n2."""
    n1, _ = nodes = memcached_nodes(2)
    app, stranded = stranded_until_n2_returns(fleet, nodes)
    assert_move_back(app, n1, stranded)


def assert_move_back(app: AppServer, n1: MemcachedProcess, browsers: list[Browser]) -> None:
    """Each session's next request (read-only) moves it from n1 to n2, data intact."""
    for index, browser in enumerate(browsers):
        old_key = browser.cookie or ""
        reply = browser.get(app, "/read/")
        assert (reply.body["count"], reply.body["cart"]) == (2, [f"u{index}", f"v{index}"])
        assert node_of(browser.cookie) == "n2", f"session {index} still on {old_key}"
        assert not primary_exists(n1, old_key), "the copy on the failover node was left behind"


def test_other_host_moves_a_session_off_its_own_failover_node(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    """msm's testTomcatFailoverMovesSessionToNonFailoverNode, over HTTP.

    Host 1 (route web1) lists n1 as its failover node, host 2 (web2) lists n2. Host 1's sessions
    live on n2; when host 2 takes one over, n2 is *its* failover node, so the session moves to n1.
    """
    nodes = memcached_nodes(2)
    host1 = fleet.start("web1", nodes, MSM_STICKY="1", MSM_ROUTE="web1", MSM_FAILOVER="n1")
    host2 = fleet.start("web2", nodes, MSM_STICKY="1", MSM_ROUTE="web2", MSM_FAILOVER="n2")
    browsers = [Browser() for _ in range(10)]
    for index, browser in enumerate(browsers):
        browser.get(host1, f"/count/?item=h1-{index}")
        assert browser.cookie is not None and browser.cookie.endswith("-n2.web1")
    host1.kill()
    for index, browser in enumerate(browsers):
        reply = browser.get(host2, "/read/")
        assert (reply.body["count"], reply.body["cart"]) == (1, [f"h1-{index}"])
        assert reply.set_cookie is not None and reply.set_cookie.endswith("-n1.web2")
