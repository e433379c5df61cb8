"""Issue 3, ``REQUEST_URI_IGNORE_PATTERN`` over HTTP with a real app process and real nodes.

An ignored request never loads, creates or saves a session and never sets or deletes a cookie,
even when its view writes to ``request.session`` (msm #401, where one static file could replace
the user's cookie). The pattern sees the path only: a query string neither hides a match
(msm #371) nor creates one. "Never loads" is checked on the nodes' own command counters.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.appservers import AppFleet, Browser
from tests.servers import MemcachedProcess, NodeStats

pytestmark = pytest.mark.integration

# ``\.ico$`` would match "/count/?file=logo.ico" if the query string were searched too.
IGNORE = r"^/static/|\.ico$"
IGNORED = ("/static/app.css", "/favicon.ico", "/static/app.css?v=3", "/favicon.ico?v=2")
NODE_COMMANDS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses", "total_items")


def node_commands(stats: list[NodeStats]) -> dict[str, int]:
    """Every command the nodes have received so far, summed over the nodes."""
    snapshots = [s.read() for s in stats]
    return {name: sum(snapshot[name] for snapshot in snapshots) for name in NODE_COMMANDS}


@pytest.mark.parametrize("sticky", ["0", "1"], ids=["non-sticky", "sticky"])
def test_ignored_urls_never_touch_session_cookie_or_node(
    sticky: str, memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    nodes = memcached_nodes(2)
    app = fleet.start("app", nodes, MSM_IGNORE=IGNORE, MSM_STICKY=sticky, MSM_ROUTE="web1")
    user = Browser()
    for item in ("a", "b"):
        user.get(app, f"/count/?item={item}")
    key = user.cookie
    assert key is not None
    stats = [NodeStats(node.port) for node in nodes]
    try:
        before = node_commands(stats)
        for browser in (user, Browser()):  # with the user's cookie, and a first visit
            for path in IGNORED:
                reply = browser.get(app, path)
                assert reply.status == 200, reply
                assert reply.set_cookie is None, f"{path} sent a session cookie"
                assert reply.body["seen"] == {}, f"{path} loaded the session"
        assert node_commands(stats) == before, "an ignored request reached a node"
        # The control: a request that uses a session does reach the nodes, so the check above
        # can fail. (A sticky read with a route may be served by the host's version table with
        # no node command at all, so the control writes a new session.)
        Browser().get(app, "/count/?item=control")
        assert node_commands(stats) != before
        page = user.get(app, "/read/")
    finally:
        for s in stats:
            s.close()
    assert user.cookie == key and page.set_cookie is None
    assert (page.body["count"], page.body["cart"]) == (2, ["a", "b"])  # the writes never landed


def test_query_string_does_not_make_a_page_ignored(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    nodes = memcached_nodes(2)
    app = fleet.start("app", nodes, MSM_IGNORE=IGNORE)
    visitor = Browser()
    reply = visitor.get(app, "/count/?file=logo.ico")
    assert reply.set_cookie is not None and reply.body["count"] == 1
    assert visitor.get(app, "/count/?file=logo.ico").body["count"] == 2
