"""Issue 3, sticky mode across real app processes (gunicorn) on two real memcached nodes.

Stickiness is per host, not per process: two workers of one route share every session, so each
must notice when the other changed it (the node's version token) and never answer from a stale
process-local copy. A worker of another route takes a session over with nothing lost, and a
read-only request served from a confirmed local copy moves no session payload at all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from django_msm.core import keys as msm_keys
from tests.appservers import AppFleet, AppServer, Browser
from tests.servers import MemcachedProcess, NodeStats, raw_client
from tests.visitors import node_of

pytestmark = pytest.mark.integration

SESSIONS = 50
ROUNDS = 10
STICKY = {"MSM_STICKY": "1"}


def stored_keys(nodes: list[MemcachedProcess], key: str) -> dict[str, bool]:
    """Which of ``key``'s primary and backup storage keys exist on which node (raw client)."""
    found = {}
    for node in nodes:
        with raw_client(node) as client:
            for name in (key, f"bak:{key}"):
                found[f"{node.node_id}:{name}"] = client.get(name) is not None
    return found


def witness_of(nodes: list[MemcachedProcess], key: str) -> str:
    """The node after the key's home in configured order: where its backup copy lives."""
    ids = [node.node_id for node in nodes]
    return ids[(ids.index(node_of(key)) + 1) % len(ids)]


def route_of(key: str | None) -> str | None:
    sid = msm_keys.parse(key)
    return None if sid is None else sid.route


def increment(browser: Browser, server: AppServer, item: str, expected: int) -> None:
    """One counting request; the answer must be exactly the previous count plus one."""
    reply = browser.get(server, f"/count/?item={item}")
    assert reply.status == 200, reply
    assert reply.body["instance"] == server.name
    assert reply.body["count"] == expected, (
        f"stale read on {server.name}: got {reply.body['count']}, expected {expected}"
    )


def test_workers_of_one_route_never_serve_stale_and_another_route_takes_over(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    nodes = memcached_nodes(2)
    workers = [fleet.start(name, nodes, MSM_ROUTE="r1", **STICKY) for name in ("a", "b")]
    browsers = [Browser() for _ in range(SESSIONS)]
    carts: list[list[str]] = [[] for _ in range(SESSIONS)]
    first_keys: list[str | None] = []
    for round_ in range(ROUNDS):
        for index, browser in enumerate(browsers):
            writer = workers[(index + round_) % 2]
            reader = workers[(index + round_ + 1) % 2]
            item = f"s{index}r{round_}"
            carts[index].append(item)
            increment(browser, writer, item, round_ + 1)
            # The other worker's local copy is one write behind: it must not be served.
            seen = browser.get(reader, "/read/").body
            assert (seen["instance"], seen["count"], seen["cart"]) == (
                reader.name, round_ + 1, carts[index])
            if round_ == 0:
                first_keys.append(browser.cookie)
    # One route, live nodes: the key never changes while the workers alternate.
    assert [b.cookie for b in browsers] == first_keys
    assert all(route_of(key) == "r1" for key in first_keys)
    counters = [worker.counters() for worker in workers]
    assert sum(c.get("loads_local", 0) for c in counters) > 0  # local copies were used...
    assert sum(c.get("loads_primary", 0) for c in counters) > 0  # ...and refreshed when stale

    other_route = fleet.start("c", nodes, MSM_ROUTE="r2", **STICKY)
    for index, browser in enumerate(browsers):
        old_key = browser.cookie
        assert old_key is not None
        reply = browser.get(other_route, "/count/?item=taken-over")
        carts[index].append("taken-over")
        assert (reply.body["count"], reply.body["cart"]) == (ROUNDS + 1, carts[index])
        assert reply.set_cookie is not None and route_of(reply.set_cookie) == "r2"
        assert msm_keys.parse(reply.set_cookie).base != msm_keys.parse(old_key).base
        # Only the old key's witness item stays: the tombstone that retired it (issue 12).
        left = {name for name, found in stored_keys(nodes, old_key).items() if found}
        assert left == {f"{witness_of(nodes, old_key)}:bak:{old_key}"}, "old copies left behind"
        new_copies = stored_keys(nodes, reply.set_cookie)
        assert new_copies[f"{node_of(reply.set_cookie)}:{reply.set_cookie}"]
        again = browser.get(other_route, "/read/")
        assert again.set_cookie is None and again.body["count"] == ROUNDS + 1
    assert other_route.counters().get("takeovers") == SESSIONS


def payload_bytes_moved(stats: list[NodeStats], action: Callable[[], object]) -> int:
    """Bytes the nodes sent while ``action`` ran, less the size of a ``stats`` reply itself."""
    before = [s.read()["bytes_written"] for s in stats]
    between = [s.read()["bytes_written"] for s in stats]
    overhead = sum(b - a for a, b in zip(before, between, strict=True))
    action()
    after = [s.read()["bytes_written"] for s in stats]
    return sum(c - b for b, c in zip(between, after, strict=True)) - overhead


def test_read_only_request_with_warm_local_copy_moves_no_payload(
    memcached_nodes: Callable[..., list[MemcachedProcess]], fleet: AppFleet
) -> None:
    size = 300_000
    nodes = memcached_nodes(2)
    first, second = (fleet.start(name, nodes, MSM_ROUTE="r1", **STICKY) for name in ("a", "b"))
    browser = Browser()
    assert browser.get(first, f"/big/?size={size}").body["big_length"] == size
    stats = [NodeStats(node.port) for node in nodes]
    try:
        local_before = first.counters().get("loads_local", 0)
        writes_before = node_writes(stats)
        replies = []
        warm = payload_bytes_moved(stats, lambda: replies.append(browser.get(first, "/read/")))
        assert replies[-1].body["big_length"] == size
        assert first.counters().get("loads_local", 0) == local_before + 1
        # The other worker has no local copy: its read must fetch the payload (the probe works).
        cold = payload_bytes_moved(stats, lambda: replies.append(browser.get(second, "/read/")))
        assert replies[-1].body["big_length"] == size
        writes_after = node_writes(stats)
    finally:
        for s in stats:
            s.close()
    assert cold > size // 2, f"cold read moved only {cold} bytes"
    assert warm < 1_000, f"a warm read-only request moved {warm} bytes (session: {size})"
    assert all(reply.set_cookie is None for reply in replies)
    assert writes_after == writes_before  # read-only: nothing rewritten or touched either


def node_writes(stats: list[NodeStats]) -> int:
    return sum(c["cmd_set"] + c["cmd_touch"] for c in (s.read() for s in stats))
