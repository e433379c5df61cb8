"""Issue 3 end to end: a logged-in user, two app instances, two memcached nodes, everything real.

The user logs in (``django.contrib.auth``), fills a cart and fetches static files. Then the app
instance they were on is killed (``kill -9``) and the client goes to the other one, then the
node holding their session is killed. Through all of it the user stays logged in with the same
cart, and ignored static URLs never create a session or touch the cookie. Run in sticky mode
with routes (msm's default set-up) and in non-sticky mode without routes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.appservers import AppFleet, AppServer, Browser
from tests.http_app.views import PASSWORD, USERNAME
from tests.servers import MemcachedProcess
from tests.visitors import node_of

pytestmark = pytest.mark.integration

IGNORE = r"^/static/|^/favicon\.ico$"
STATIC_PATHS = ("/static/app.css", "/favicon.ico", "/static/app.css?v=3", "/favicon.ico?v=2")
MODES = {
    "sticky-routes": ({"MSM_STICKY": "1", "MSM_ROUTE": "web1"},
                      {"MSM_STICKY": "1", "MSM_ROUTE": "web2"}),
    "non-sticky": ({"MSM_STICKY": "0"}, {"MSM_STICKY": "0"}),
}


class User:
    """A browser plus what the user expects their session to hold."""

    def __init__(self) -> None:
        self.browser = Browser()
        self.cart: list[str] = []

    def buy(self, server: AppServer, item: str) -> None:
        reply = self.browser.get(server, f"/count/?item={item}")
        self.cart.append(item)
        assert reply.status == 200, reply
        self.check(reply.body, server)

    def look(self, server: AppServer) -> str | None:
        """A read-only page view; return the session cookie it re-sent, if any."""
        reply = self.browser.get(server, "/read/")
        assert reply.status == 200, reply
        self.check(reply.body, server)
        return reply.set_cookie

    def check(self, body: dict[str, object], server: AppServer) -> None:
        assert body["instance"] == server.name
        assert (body["user"], body["cart"], body["count"]) == (
            USERNAME, self.cart, len(self.cart)), f"session damaged: {body}"

    def fetch_static(self, server: AppServer, home: AppServer | None = None) -> None:
        """Static URLs, whose view writes the session: no cookie change, session unchanged.

        ``home`` is the instance the user's pages come from (default: ``server``), where the
        session is looked at afterwards.
        """
        cookie = self.browser.cookie
        for path in STATIC_PATHS:
            reply = self.browser.get(server, path)
            assert reply.status == 200, reply
            assert reply.set_cookie is None, f"{path} sent a session cookie"
            assert reply.body["seen"] == {}, f"{path} loaded the session"
        assert self.browser.cookie == cookie
        assert self.look(home or server) is None  # unchanged, and not re-sent


@pytest.mark.parametrize("mode", MODES)
def test_login_and_cart_survive_instance_and_node_loss(
    mode: str, memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    nodes = memcached_nodes(2)
    env1, env2 = MODES[mode]
    app1 = fleet.start("app1", nodes, MSM_IGNORE=IGNORE, **env1)
    app2 = fleet.start("app2", nodes, MSM_IGNORE=IGNORE, **env2)
    user = User()
    stranger = Browser()  # a first visit that only fetches static files
    for path in STATIC_PATHS:
        assert stranger.get(app1, path).set_cookie is None
    assert stranger.cookie is None

    login = user.browser.post(app1, "/login/", {"username": USERNAME, "password": PASSWORD})
    assert login.status == 200 and login.body["user"] == USERNAME
    for item in ("apple", "pear"):
        user.buy(app1, item)
    user.fetch_static(app1)
    # The other instance's static files: no takeover, nothing, even for another route's key.
    user.fetch_static(app2, home=app1)

    app1.kill()  # kill -9: the balancer sends the user to app2
    resent = user.look(app2)
    if env2.get("MSM_ROUTE"):
        assert resent is not None and resent.endswith(".web2")  # taken over by app2's route
    user.buy(app2, "plum")

    holder = {node.node_id: node for node in nodes}[node_of(user.browser.cookie)]
    holder.kill()  # the node with the session's primary copy
    user.look(app2)
    user.buy(app2, "fig")
    assert node_of(user.browser.cookie) != holder.node_id
    user.fetch_static(app2)
    user.buy(app2, "kiwi")
