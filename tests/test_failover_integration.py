"""Issue 2: node failures seen from HTTP requests, on real memcached processes.

Simulated users are ``django.test.Client`` instances carrying their own session cookie through
Django's stock ``SessionMiddleware`` to the views in ``tests/views.py``. Each user's data is
distinct (a counter and a list of tagged visits), so "intact" means "exactly what this user
wrote", never "some session came back".

The small client-side helpers here (``Visitor``, ``node_stats``, ``raw_client``) are shared by
``test_hostile_cookies.py`` and ``test_large_session.py``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from pymemcache.client.base import Client as RawClient

from django_msm import session_id
from django_msm.registry import reset_registry
from django_msm.session import SessionStore
from tests.servers import MemcachedProcess

pytestmark = pytest.mark.integration


# -- helpers ------------------------------------------------------------------------------------
def msm_settings(nodes: Sequence[MemcachedProcess], **extra: Any) -> override_settings:
    """Point DJANGO_MSM at ``nodes`` (in this order); a settings change resets the registry."""
    spec = ",".join(node.spec for node in nodes)
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 0.5, **extra}
    )


def node_of(key: str | None) -> str | None:
    """The node id a session key names (None for no key or a malformed one)."""
    sid = session_id.parse(key)
    return None if sid is None else sid.node_id


def node_stats(port: int) -> dict[str, int]:
    """memcached's own ``stats`` counters, read over a plain socket (independent of the engine)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        deadline = time.monotonic() + 5
        while not reply.endswith(b"END\r\n") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    stats = {}
    for line in reply.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


@contextlib.contextmanager
def raw_client(node: MemcachedProcess) -> Iterator[RawClient]:
    """A plain pymemcache client on one node, to look at stored keys behind the engine's back."""
    client = RawClient(("127.0.0.1", node.port), connect_timeout=2, timeout=2)
    try:
        yield client
    finally:
        client.close()


def raw_get(node: MemcachedProcess, key: str) -> bytes | None:
    with raw_client(node) as client:
        return client.get(key)


class Visitor:
    """One simulated user: a test Client with its session cookie and every key it was given."""

    def __init__(self, tag: str):
        self.tag = tag
        self.client = Client()
        self.visits = 0
        self.keys: list[str] = []
        self.durations: list[tuple[float, float]] = []  # (start, seconds) per request

    @property
    def key(self) -> str | None:
        morsel = self.client.cookies.get(settings.SESSION_COOKIE_NAME)
        return None if morsel is None or not morsel.value else morsel.value

    @property
    def relocations(self) -> int:
        return len(self.keys) - 1

    def request(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path`` and return the session as the view saw it; record key changes."""
        start = time.perf_counter()
        response = self.client.get(path, params)
        self.durations.append((start, time.perf_counter() - start))
        assert response.status_code == 200, response.content[:300]
        if self.key is not None and (not self.keys or self.keys[-1] != self.key):
            self.keys.append(self.key)
        return json.loads(response.content)["data"]

    def visit(self) -> dict[str, Any]:
        self.visits += 1
        return self.request("/visit/", tag=f"{self.tag}-{self.visits}")

    def read(self) -> dict[str, Any]:
        return self.request("/read/")

    def expected(self) -> dict[str, Any]:
        history = [f"{self.tag}-{n}" for n in range(1, self.visits + 1)]
        return {"count": self.visits, "history": history}

    def check_visit(self) -> None:
        assert self.visit() == self.expected(), f"{self.tag} lost data (keys {self.keys})"

    def check_read(self) -> None:
        assert self.read() == self.expected(), f"{self.tag} lost data (keys {self.keys})"


def new_visitors(prefix: str, count: int) -> list[Visitor]:
    """Create ``count`` users with one stored session each."""
    visitors = [Visitor(f"{prefix}{i}") for i in range(count)]
    for visitor in visitors:
        visitor.check_visit()
        assert visitor.key is not None
    return visitors


def by_node(visitors: Sequence[Visitor]) -> dict[str | None, list[Visitor]]:
    groups: dict[str | None, list[Visitor]] = {}
    for visitor in visitors:
        groups.setdefault(node_of(visitor.key), []).append(visitor)
    return groups


def assert_relocated_once_off(visitors: Sequence[Visitor], dead: str, live: set[str]) -> None:
    """Sessions named after ``dead`` moved exactly once, to a ``live`` node; the others stayed."""
    for visitor in visitors:
        if node_of(visitor.keys[0]) == dead:
            assert visitor.relocations == 1, f"{visitor.tag}: keys {visitor.keys}"
            assert node_of(visitor.key) in live, visitor.keys
        else:
            assert visitor.relocations == 0, f"{visitor.tag}: keys {visitor.keys}"


# -- kill -9 ------------------------------------------------------------------------------------
def test_killed_node_loses_no_session_and_relocates_each_once(memcached_nodes) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        users = new_visitors("u", 300)
        groups = by_node(users)
        assert sorted(groups) == ["n1", "n2", "n3"], {k: len(v) for k, v in groups.items()}

        nodes[1].kill()
        for user in users:  # the next request of every user: data intact, one write each
            user.check_visit()
        for _ in range(2):  # further requests, read-only and writing: keys stay stable
            for user in users:
                user.check_read()
                user.check_visit()

        assert_relocated_once_off(users, dead="n2", live={"n1", "n3"})


def test_node_restarted_empty_loses_nothing_of_before_or_during_the_outage(
    memcached_nodes,
) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        active = new_visitors("a", 120)
        dormant = new_visitors("d", 60)  # no request at all while the node is down
        nodes[1].kill()
        for user in active:
            user.check_visit()
        during = new_visitors("o", 60)
        assert "n2" not in by_node(during), "a session was created on the dead node"

        nodes[1].restart_empty()
        time.sleep(1.3)  # past RETRY_TIMEOUT: the next call probes n2 and finds it back
        everyone = active + dormant + during
        for _ in range(2):
            for user in everyone:
                user.check_read()
                user.check_visit()

        assert_relocated_once_off(active, dead="n2", live={"n1", "n3"})  # moved while down
        assert_relocated_once_off(dormant, dead="n2", live={"n1", "n2", "n3"})  # moved after
        assert all(user.relocations == 0 for user in during)


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
PAUSE_TIMEOUT = 1.0  # OPERATION_TIMEOUT of the pause test
PAUSE_RETRY = 4.0  # RETRY_TIMEOUT: no probe of the stopped node before this has passed
MARGIN = 1.5  # generous: a shared, noisy 2-core machine


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


def assert_gone(key: str) -> None:
    """A deleted or replaced key serves nothing: not by cookie, not through the store API."""
    replay = Visitor("replay")
    replay.client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.read() == {}, f"session {key} came back"
    assert SessionStore(key).load() == {}
    assert SessionStore().exists(key) is False


def pick(groups: dict[str | None, list[Visitor]], node: str, count: int) -> list[Visitor]:
    chosen = groups[node][:count]
    assert len(chosen) == count, f"too few sessions on {node}"
    del groups[node][:count]
    return chosen


def test_stopped_node_bounded_wait_no_logout_and_no_resurrection(memcached_nodes) -> None:
    nodes = memcached_nodes(3)
    settings_ = msm_settings(nodes, OPERATION_TIMEOUT=PAUSE_TIMEOUT, RETRY_TIMEOUT=PAUSE_RETRY)
    with settings_:
        users = new_visitors("p", 60)
        groups = by_node(users)  # configured order n1, n2, n3: backups of n1 live on n2
        leaving = pick(groups, "n2", 4) + pick(groups, "n1", 4) + pick(groups, "n3", 3)
        first = groups["n2"][0]

        nodes[1].pause()
        start = time.perf_counter()
        first.check_read()  # the first request to meet the stopped node
        waited = first.durations[-1][1]
        assert PAUSE_TIMEOUT / 2 <= waited < PAUSE_TIMEOUT + MARGIN, waited
        since = start + waited

        for index, user in enumerate(users):  # nobody is logged out
            user.check_read()
            if index % 2:
                user.check_visit()  # a change moves a session off the stopped node
        gone = [user.keys[-1] for user in leaving] + [
            user.keys[0] for user in users if user.relocations
        ]
        for user in leaving:
            assert user.request("/logout/") == {}
            assert user.key is None
        assert assert_no_wait_after(users, since) >= 60
        readers = [user for user in users[::2] if user not in leaving]
        assert all(user.relocations == 0 for user in readers), "one timeout moved sessions"

        nodes[1].resume()
        time.sleep(max(0.0, since + PAUSE_RETRY + 0.3 - time.perf_counter()))
        gets = node_stats(nodes[1].port)["cmd_get"]  # after n2 ran what was queued meanwhile
        for key in gone:  # the first lookup probes n2 and finds it back, old copies and all
            assert_gone(key)
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
    nodes = memcached_nodes(3)
    with msm_settings(nodes):
        users = new_visitors("x", 30)
        for user in users:
            user.check_visit()  # a second revision, so both copies were rewritten once
        keys = [user.key for user in users]
        for user in users:
            assert user.request("/logout/") == {}
            assert user.key is None
        for key in keys:
            for node in nodes:
                assert raw_get(node, key) is None, f"{key} left on {node.spec}"
                assert raw_get(node, f"bak:{key}") is None, f"bak:{key} left on {node.spec}"
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
