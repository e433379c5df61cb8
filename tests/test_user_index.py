"""The per-user index's logic (core.user_index, core.user_service) over in-memory nodes.

Nodes are ``InMemoryStore``s on a ``FakeClock``: ``down = True`` is a node that refuses, ``clear()``
one that restarted empty. What only real nodes show (memcached's CAS, Redis's script, HTTP
clients, pauses) is in tests/test_user_sessions.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock
from django_msm.core.cluster import Cluster
from django_msm.core.envelope import unpack
from django_msm.core.events import ClusterEvents
from django_msm.core.keys import KeyLayout
from django_msm.core.stats import statistics
from django_msm.core.user_index import Entry, Prefetch, UserIndex, decode
from django_msm.core.user_service import UserSessionService
from django_msm.runtime import get_config
from django_msm.stores.memory import InMemoryStore

THREE = "n1:10.0.0.1:11211,n2:10.0.0.2:11211,n3:10.0.0.3:11211"
TTL = 3600


class Ended(ClusterEvents):
    def __init__(self) -> None:
        self.ended: list[tuple[str, str, str]] = []

    def session_ended(self, user_id: str, session_key: str, reason: str) -> None:
        self.ended.append((user_id, session_key, reason))


class Parts:
    """A cluster on in-memory nodes, and a way to make sessions owned by a user."""

    def __init__(self, spec: str = THREE, **msm: Any):
        with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec, **msm}):
            config = get_config()
        self.clock = FakeClock()
        self.stores = {node: InMemoryStore(node, self.clock) for node in config.nodes}
        self.events = Ended()
        self.cluster = Cluster(config, self.clock, self.stores, self.events)
        self.serializer = config.serializer()

    @property
    def users(self) -> UserSessionService:
        assert self.cluster.users is not None
        return self.cluster.users

    @property
    def index(self) -> UserIndex:
        return self.users.index

    def store(self, node_id: str) -> InMemoryStore:
        return next(s for node, s in self.stores.items() if node.id == node_id)

    def login(self, user_id: str | None, meta: dict[str, str] | None = None) -> str:
        """A session stored as the engine stores it, owned by ``user_id``, and its entry."""
        payload = self.serializer.dumps({} if user_id is None else {"_auth_user_id": user_id})
        copy = self.cluster.copies.new_copy(payload, TTL, 1)
        sid, _ = self.cluster.copies.create(copy, TTL, None)
        if user_id is not None:
            self.users.follow((None, None), (user_id, str(sid)), meta, TTL)
        return str(sid)

    def login_with(self, user_id: str, ahead: Prefetch) -> str:
        """``login`` whose index update starts from a prefetch."""
        payload = self.serializer.dumps({"_auth_user_id": user_id})
        copy = self.cluster.copies.new_copy(payload, TTL, 1)
        sid, _ = self.cluster.copies.create(copy, TTL, None)
        self.users.follow((None, None), (user_id, str(sid)), None, TTL, ahead)
        return str(sid)

    def keys(self, user_id: str) -> set[str]:
        return {entry.key for entry in self.users.sessions(user_id)}


@pytest.fixture
def parts() -> Parts:
    return Parts()


# -- key forms and placement -------------------------------------------------------------------
def test_index_keys_keep_plain_ids_and_digest_the_rest() -> None:
    layout = KeyLayout("shop_")
    assert layout.user("42") == "usr:shop_42"
    assert layout.user_backup("alice@example.com") == "bak:usr:shop_alice@example.com"
    odd = layout.user("Jörg Müller")
    assert odd.startswith("usr:shop_~") and len(odd) == len("usr:shop_~") + 40
    assert " " not in odd and odd == layout.user("Jörg Müller")
    assert layout.user("x" * 65) != layout.user("x" * 66)  # long ids digest, distinctly


def test_primary_is_a_rendezvous_choice_over_regular_nodes() -> None:
    parts = Parts("n1:h:1,n2:h:2,n3:h:3,f:h:4", FAILOVER_NODES="f")
    homes = Counter(parts.index.primary(str(uid)).id for uid in range(3000))
    assert set(homes) == {"n1", "n2", "n3"}  # never the failover node
    assert min(homes.values()) > 800, homes
    again = Parts("n1:h:1,n2:h:2,n3:h:3,f:h:4", FAILOVER_NODES="f")
    assert all(again.index.primary(str(u)) == parts.index.primary(str(u)) for u in range(300))
    grown = Parts("n1:h:1,n2:h:2,n3:h:3,n4:h:5")
    moved = [u for u in range(3000)
             if grown.index.primary(str(u)).id != parts.index.primary(str(u)).id]
    assert all(grown.index.primary(str(u)).id == "n4" for u in moved)  # only onto the new node
    assert 500 < len(moved) < 1000


# -- copies ------------------------------------------------------------------------------------
def test_a_login_writes_a_signed_index_in_two_copies(parts: Parts) -> None:
    key = parts.login("7", {"REMOTE_ADDR": "10.1.1.1", "HTTP_USER_AGENT": "Phone"})
    primary = parts.index.primary("7")
    backup = parts.cluster.registry.backup_nodes(primary)[0]
    raw = parts.stores[primary].get("usr:7")
    assert raw is not None and parts.stores[backup].get("bak:usr:7") == raw
    entries = decode(unpack(raw, parts.cluster.config.signing_keys).payload)
    assert [(e.key, e.ip, e.user_agent) for e in entries] == [(key, None, "Phone")]  # IP off
    parts.stores[primary].set("usr:7", raw[:-1] + bytes([raw[-1] ^ 1]), TTL)  # forged
    before = statistics.snapshot()["counters"].get("corrupt_copies", 0)
    assert parts.keys("7") == {key}  # the backup's copy still names it
    assert statistics.snapshot()["counters"]["corrupt_copies"] > before


def test_ip_is_recorded_only_when_asked(parts: Parts) -> None:
    on = Parts(USER_SESSIONS_RECORD_IP=True, USER_SESSIONS_RECORD_USER_AGENT=False)
    on.login("7", {"REMOTE_ADDR": "10.1.1.1", "HTTP_USER_AGENT": "Phone"})
    assert [(e.ip, e.user_agent) for e in on.index.read("7")] == [("10.1.1.1", None)]


def test_primary_down_the_backup_takes_the_writes_and_nothing_is_lost_on_return() -> None:
    parts = Parts()
    first = parts.login("7")
    primary = parts.stores[parts.index.primary("7")]
    primary.down = True
    second = parts.login("7")  # written on the backup place alone
    primary.down = False  # back with the copy it had: the one without ``second``
    parts.clock.advance(parts.cluster.config.retry_timeout)  # probed again
    assert parts.keys("7") == {first, second}
    primary.clear()  # back empty this time
    assert parts.keys("7") == {first, second}
    third = parts.login("7")
    assert parts.keys("7") == {first, second, third}
    assert {e.key for e in decode(unpack(primary.get("usr:7"), parts.cluster.config.signing_keys)
                                  .payload)} == {first, second, third}


def test_a_lost_race_is_retried_on_fresh_data(parts: Parts) -> None:
    """Another process writes between this update's read and its compare-and-set."""
    racer = parts.login("7")
    late: list[str] = []

    def meanwhile(entries: list[Entry]) -> list[Entry]:
        if not late:
            late.append(parts.login("7"))  # the other process wins the race
        return [*entries, Entry("x" * 32 + "-n1", 1, int(parts.clock.time()), TTL)]

    parts.index.update("7", meanwhile)
    assert {e.key for e in parts.index.read("7")} == {racer, late[0], "x" * 32 + "-n1"}


def test_a_prefetched_read_stands_for_the_first_read(parts: Parts) -> None:
    """A login's index reads leave with its session write: the update reads nothing more."""
    first = parts.login("7")
    for store in parts.stores.values():
        store.calls.clear()
    ahead = parts.users.prefetch("7")
    assert all(store.calls == [] for store in parts.stores.values())  # deferred: not sent yet
    second = parts.login_with("7", ahead)
    index_reads = [key for store in parts.stores.values() for op, key in store.calls
                   if op == "get" and "usr:" in key]
    index_writes = [key for store in parts.stores.values() for op, key in store.calls
                    if op != "get" and "usr:" in key]
    assert sorted(index_reads) == sorted(key for _, key in parts.index.places("7"))
    assert len(index_writes) == 2
    assert parts.keys("7") == {first, second}


def test_a_prefetch_overtaken_by_another_writer_loses_nothing(parts: Parts) -> None:
    """Its versions fence the write as a read's would: the lost race is retried on fresh data."""
    ahead = parts.users.prefetch("7")
    other = parts.login("7")  # another process's login lands after the prefetch was read
    ahead.pending.answers()
    mine = parts.login_with("7", ahead)
    assert parts.keys("7") == {other, mine}


# -- bounded: expiry, ended sessions, the limit ------------------------------------------------
def test_entries_of_expired_sessions_are_dropped_and_the_index_outlives_its_sessions(
    parts: Parts,
) -> None:
    key = parts.login("7")
    primary = parts.stores[parts.index.primary("7")]
    lifetime = parts.cluster.config.session_lifetime
    parts.clock.advance(lifetime)  # the index item is still there (it lives past the session)
    assert primary.get("usr:7") is not None
    assert [e.key for e in parts.index.read("7")] == [key]
    parts.clock.advance(parts.cluster.config.user_touch_interval + 1)
    assert parts.index.read("7") == []


def test_listing_drops_entries_of_ended_and_foreign_sessions(parts: Parts) -> None:
    mine, gone = parts.login("7"), parts.login("7")
    parts.users.end("7", gone, "end")
    foreign = parts.login(None)  # someone else's session, named in this user's index
    parts.index.update("7", lambda entries: [*entries, Entry(foreign, 1, 1_700_000_000, TTL)])
    assert parts.keys("7") == {mine}
    assert {e.key for e in parts.index.read("7")} == {mine}  # written back without them
    assert parts.users.end("7", foreign, "end") is False
    assert parts.cluster.copies.load(*locate(parts, foreign)).copy is not None


def locate(parts: Parts, key: str) -> tuple[Any, Any]:
    from django_msm.core.keys import parse

    sid = parse(key)
    assert sid is not None
    return sid, parts.cluster.registry.node_for(sid)


def test_over_the_limit_the_least_recently_seen_session_ends() -> None:
    parts = Parts(USER_SESSIONS_MAX=3)
    oldest = parts.login("7")
    parts.clock.advance(10)
    keys = [parts.login("7") for _ in range(2)]
    parts.clock.advance(10)
    newest = parts.login("7")
    assert parts.keys("7") == {*keys, newest}
    assert parts.cluster.copies.load(*locate(parts, oldest)).copy is None
    assert ("7", oldest, "limit") in parts.events.ended


def test_a_login_at_the_limit_reads_the_oldest_session_only() -> None:
    """Enforcing USER_SESSIONS_MAX checks the excess, not every session of the user (it read
    all of them: a login of an account with 100 sessions cost 100 reads, 8 ms in make bench)."""
    parts = Parts(USER_SESSIONS_MAX=20)
    oldest = parts.login("7")
    for _ in range(19):
        parts.clock.advance(1)
        parts.login("7")
    for store in parts.stores.values():
        store.calls.clear()
    parts.clock.advance(1)
    parts.login("7")
    reads = [key for s in parts.stores.values() for op, key in s.calls
             if op.startswith("get") and not key.startswith(("msm:", "usr:", "bak:usr:"))]
    assert len(reads) <= 2, reads  # the oldest session's copies, not one per session
    assert oldest not in parts.keys("7") and len(parts.keys("7")) == 20


# -- the cost of an ordinary request -----------------------------------------------------------
def test_last_seen_is_refreshed_at_most_once_per_interval(parts: Parts) -> None:
    key = parts.login("7")
    for store in parts.stores.values():
        store.calls.clear()
    parts.clock.advance(30)
    for _ in range(50):
        parts.users.seen("7", key, None, lambda: TTL)
    assert all(not store.calls for store in parts.stores.values())  # just logged in: fresh
    parts.clock.advance(parts.cluster.config.user_touch_interval)
    parts.users.seen("7", key, None, lambda: TTL)
    parts.users.seen("7", key, None, lambda: TTL)
    assert [e.last_seen for e in parts.index.read("7")] == [int(parts.clock.time())]
    writes = [c for s in parts.stores.values() for c in s.calls if c[0] in ("cas", "add")]
    assert len(writes) == 2  # one refresh: the primary and its backup


def test_a_session_whose_entry_was_lost_writes_it_again(parts: Parts) -> None:
    key = parts.login("7")
    for store in parts.stores.values():  # both copies of the index lost, the session kept
        for item in [k for k in store._items if k.startswith(("usr:", "bak:usr:"))]:
            store.delete(item)
    parts.clock.advance(parts.cluster.config.user_touch_interval)
    parts.users.seen("7", key, {"HTTP_USER_AGENT": "Laptop"}, lambda: TTL)
    assert [(e.key, e.user_agent) for e in parts.index.read("7")] == [(key, "Laptop")]
