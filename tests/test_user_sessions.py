"""Issue 15 on real nodes: every session of a user listed, one ended, all others ended, and ended
sessions staying ended through a relocation, a node restarted empty and a node paused.

Devices are ``django.test.Client``s with their own IP address and user agent, logging in through
``django.contrib.auth`` behind django_msm's middleware (``tests/user_sessions_app.py``). "Another
instance" is a fresh cluster in this process (``reset_cluster``): new connections, a health view
that never saw the failures, no sticky copies.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from django_msm import signals, user_sessions
from django_msm.runtime import get_cluster, reset_cluster
from tests.servers import ServerProcess
from tests.user_sessions_app import app_settings
from tests.visitors import msm_settings, node_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

RETRY = 1.0
PASSWORD = "correct horse battery staple"


class Device:
    """One browser of one user: a test client with its own address, agent and cookie."""

    def __init__(self, ip: str, agent: str):
        self.ip, self.agent = ip, agent
        self.client = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)

    @property
    def key(self) -> str | None:
        morsel = self.client.cookies.get(settings.SESSION_COOKIE_NAME)
        return None if morsel is None or not morsel.value else morsel.value

    def log_in(self, username: str) -> str:
        reply = self.client.post("/login/", {"username": username, "password": PASSWORD})
        assert reply.status_code == 200 and reply.json()["user"] == username
        assert self.key is not None
        return self.key

    def who(self) -> str | None:
        reply = self.client.get("/whoami/")
        assert reply.status_code == 200, reply.content[:300]
        return reply.json()["user"]

    def visit(self) -> str | None:
        """A request that changes the session (a session on a dead node moves at its save)."""
        reply = self.client.get("/visit/")
        assert reply.status_code == 200, reply.content[:300]
        return reply.json()["user"]

    def replay(self, key: str) -> Device:
        """Another client presenting an old cookie of this one."""
        other = Device(self.ip, self.agent)
        other.client.cookies[settings.SESSION_COOKIE_NAME] = key
        return other


@pytest.fixture
def people() -> dict[str, User]:
    return {name: User.objects.create_user(name, password=PASSWORD) for name in ("alice", "bob")}


@pytest.fixture
def ended() -> Iterator[list[tuple[str, str, str]]]:
    seen: list[tuple[str, str, str]] = []

    def receiver(sender: Any, user_id: str, session_key: str, reason: str, **kw: Any) -> None:
        seen.append((user_id, session_key, reason))

    signals.session_ended.connect(receiver)
    yield seen
    signals.session_ended.disconnect(receiver)


def listed(user: User) -> set[tuple[str, str | None, str | None]]:
    return {(s.session_key, s.ip, s.user_agent) for s in user_sessions.list_for(user)}


def indexed(user: User) -> set[str]:
    """The keys the index holds for ``user`` as stored, before any listing verifies them."""
    users = get_cluster().users
    assert users is not None
    return {entry.key for entry in users.index.read(str(user.pk))}


def on_node(devices: list[Device], node_id: str) -> Device | None:
    return next((device for device in devices if node_of(device.key) == node_id), None)


MODES = {
    "memcached": ("memcached_nodes", {}),
    "memcached-sticky-locking": ("memcached_nodes", {"STICKY": True, "LOCKING_MODE": "all"}),
    "redis-locking-auto": ("redis_nodes", {"LOCKING_MODE": "auto"}),
    "redis-sticky": ("redis_nodes", {"STICKY": True}),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_list_end_and_end_all_hold_through_relocation_restart_and_pause(
    request: pytest.FixtureRequest, mode: str, people: dict[str, User],
    ended: list[tuple[str, str, str]],
) -> None:
    factory, msm = MODES[mode]
    nodes: list[ServerProcess] = request.getfixturevalue(factory)(3)
    alice, bob = people["alice"], people["bob"]
    with msm_settings(nodes, RETRY_TIMEOUT=RETRY, USER_SESSIONS_RECORD_IP=True, **msm), \
            app_settings():
        laptop, phone, tablet = (Device(f"10.0.0.{i}", agent)
                                 for i, agent in enumerate(("Laptop", "Phone", "Tablet"), 1))
        for device in (laptop, phone, tablet):
            device.log_in("alice")
        desk = Device("10.9.9.9", "Bob's desk")
        desk.log_in("bob")

        # list_for: exactly alice's three, with their addresses and agents
        assert listed(alice) == {(d.key, d.ip, d.agent) for d in (laptop, phone, tablet)}
        assert listed(bob) == {(desk.key, desk.ip, desk.agent)}

        # end: exactly that client is logged out; nobody can end another user's session
        phone_key = phone.key
        assert user_sessions.end(alice, phone_key) is True
        assert [d.who() for d in (laptop, phone, tablet, desk)] == ["alice", None, "alice", "bob"]
        assert user_sessions.end(alice, desk.key) is False and desk.who() == "bob"
        assert user_sessions.end(alice, phone_key) is False
        assert ended == [(str(alice.pk), phone_key, "end")]

        # the node holding the tablet's session dies: the session moves, the index follows it
        dead = _node(nodes, node_of(tablet.key))
        old_tablet = tablet.key
        dead.kill()
        assert tablet.visit() == "alice"
        assert node_of(tablet.key) != dead.node_id
        assert tablet.key in indexed(alice)  # written by the relocating save itself
        assert tablet.key in {s.session_key for s in user_sessions.list_for(alice)}
        assert old_tablet not in {s.session_key for s in user_sessions.list_for(alice)}
        assert laptop.visit() == "alice"  # moves too if it lived there

        # end_all(keep=...): every other device of alice's, the relocated one included
        assert user_sessions.end_all(alice, keep=laptop.key) == 1
        assert [d.who() for d in (laptop, tablet, desk)] == ["alice", None, "bob"]
        assert listed(alice) == {(laptop.key, laptop.ip, laptop.agent)}

        watch = _ended_while_paused(nodes, dead, alice)

        # the dead node comes back empty; another instance sees every old cookie
        dead.restart_empty()
        time.sleep(RETRY + 0.3)  # past RETRY_TIMEOUT: the node is probed again
        reset_cluster()
        replays = [phone.replay(phone_key), tablet, tablet.replay(old_tablet), watch]
        assert [d.who() for d in replays] == [None, None, None, None]
        assert [laptop.who(), desk.who()] == ["alice", "bob"]
        assert listed(alice) == {(laptop.key, laptop.ip, laptop.agent)}
        assert listed(bob) == {(desk.key, desk.ip, desk.agent)}


def _node(nodes: list[ServerProcess], node_id: str | None) -> Any:
    return next(node for node in nodes if getattr(node, "node_id", None) == node_id)


def _ended_while_paused(nodes: list[ServerProcess], dead: Any, alice: User) -> Device:
    """A new device of alice's whose session lives on a live node; that node is paused while
    the session is ended and resumed after: another instance must find it ended."""
    live = [node for node in nodes if node is not dead]
    devices = []
    for attempt in range(40):  # new sessions go to a random live node: a few tries find one
        device = Device(f"10.0.1.{attempt}", "Watch")
        device.log_in("alice")
        devices.append(device)
        if on_node(devices, live[0].node_id) is not None:
            break
    watch = on_node(devices, live[0].node_id)
    assert watch is not None, "forty new sessions, none on the node to pause"
    paused = live[0]
    paused.pause()
    try:
        assert user_sessions.end(alice, watch.key) is True  # from its backup copy
    finally:
        paused.resume()
    reset_cluster()  # another instance: it never saw the node paused
    assert watch.who() is None
    user_sessions.end_all(alice, keep=_laptop_key(alice, devices))
    return watch


def _laptop_key(alice: User, extra: list[Device]) -> str:
    """The one session of alice's that is not one of ``extra``."""
    keys = {s.session_key for s in user_sessions.list_for(alice)} - {d.key for d in extra}
    (key,) = keys
    return key


# -- kept by the engine: login, logout, another user, the cost of an ordinary request -----------
def test_logins_logouts_and_a_switch_of_user_keep_the_index(
    memcached_nodes: Callable[..., list[ServerProcess]], people: dict[str, User],
    ended: list[tuple[str, str, str]],
) -> None:
    alice, bob = people["alice"], people["bob"]
    with msm_settings(memcached_nodes(2)), app_settings():
        device = Device("10.0.0.1", "Laptop")
        assert device.visit() is None  # an anonymous session first
        anonymous = device.key
        first = device.log_in("alice")
        assert first != anonymous and indexed(alice) == {first}  # the cycled key, not the old
        again = device.log_in("alice")  # logging in again cycles the key: the entry follows
        assert indexed(alice) == {again}
        switched = device.log_in("bob")  # another user on the same browser: flushed first
        assert (indexed(alice), indexed(bob)) == (set(), {switched})
        assert ended == [(str(alice.pk), again, "logout")]
        assert device.client.get("/logout/").json()["user"] is None
        assert indexed(bob) == set()
        assert ended[-1] == (str(bob.pk), switched, "logout")


def test_an_ordinary_request_sends_nothing_more_to_the_nodes(
    redis_nodes: Callable[..., list[Any]], people: dict[str, User],
) -> None:
    """Logged-in requests within USER_SESSIONS_TOUCH_INTERVAL cost what they cost without the
    index (Redis counts every command it ran)."""
    nodes = redis_nodes(2)
    calls = {}
    for switch in (True, False):
        with msm_settings(nodes, USER_SESSIONS=switch), app_settings():
            device = Device("10.0.0.1", "Laptop")
            device.log_in("alice")
            for node in nodes:
                node.reset_stats()
            for _ in range(20):
                assert device.who() == "alice"
                assert device.visit() == "alice"
            calls[switch] = data_commands(nodes)
    assert calls[True] == calls[False], calls
    assert calls[True]["set"] == 40  # each visit wrote its two copies: the requests did run


def data_commands(nodes: list[Any]) -> Counter[str]:
    """Commands on session data, summed over the nodes (new connections' handshakes vary)."""
    total: Counter[str] = Counter()
    for node in nodes:
        total.update(node.commandstats())
    for admin in ("hello", "config|resetstat", "client|setinfo", "info"):
        total.pop(admin, None)
    return total
