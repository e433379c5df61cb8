"""Issue 2: hostile session cookies are misses that never reach a node.

The proof of "never reaches a node" is memcached's own ``stats`` counters on every node, read
over a plain socket before and after: they count every get, set, touch, delete and flush the
engine sends, whatever client library it uses. Cookies go in as raw ``Cookie:`` headers (UTF-8
bytes, as a browser sends them) and the test checks that Django hands the engine exactly the
hostile string.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.conf import settings
from django.http.cookie import parse_cookie
from django.test import Client, override_settings

from django_msm.core.health import NodeState
from django_msm.runtime import get_registry
from django_msm.session import SessionStore
from tests.servers import MemcachedProcess, node_stats
from tests.visitors import msm_settings, new_visitors, node_of

pytestmark = pytest.mark.integration

BASE = "k3j9x0abcdefghijklmnopqrstuvwxyz"  # 32 valid characters
assert len(BASE) == 32

HOSTILE = {
    "spaces": "k3j9x0abcdefghij klmnopqrstuvwxy-n1",
    "crlf_flush_all": f"{BASE}-n1\r\nflush_all\r\nget {BASE}-n1",
    "crlf_only_commands": "x\r\nflush_all\r\ndelete x\r\nx",
    "overlong_300": "a" * 300,
    "overlong_well_formed": f"{BASE}-n1." + "r" * 270,
    "unknown_node": f"{BASE}-n9",
    "non_ascii": f"{BASE[:-1]}é-n1",
    "non_ascii_node": f"{BASE}-ключ",
    "nul": f"{BASE}\x00-n1",
    "nul_after_node": f"{BASE}-n1\x00",
    "no_node_id_multi_node": BASE,
    "upper_case": BASE.upper() + "-n1",
    "bad_route": f"{BASE}-n1.web 1",
    "tab": f"{BASE}-n1\tx",
}


def traffic(nodes: Sequence[MemcachedProcess]) -> dict[str, dict[str, int]]:
    """The counters of every node that any command reaching it would move."""
    wanted = ("cmd_", "get_", "delete_", "touch_", "incr_", "decr_", "cas_")
    result = {}
    for node in nodes:
        stats = node_stats(node.port)
        counters = {k: v for k, v in stats.items() if k.startswith(wanted)}
        counters["total_items"] = stats["total_items"]
        result[node.node_id] = counters
    return result


def moved(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, int]:
    """Counter deltas summed over the nodes, only those that changed."""
    deltas: dict[str, int] = {}
    for node, counters in after.items():
        for name, value in counters.items():
            delta = value - before[node].get(name, 0)
            if delta:
                deltas[name] = deltas.get(name, 0) + delta
    return deltas


def with_cookie(value: str, path: str, **params: str):  # type: ignore[no-untyped-def]
    """GET ``path`` with a raw ``Cookie:`` header carrying ``value`` as a browser would send it."""
    header = f"{settings.SESSION_COOKIE_NAME}={value}"
    assert parse_cookie(header)[settings.SESSION_COOKIE_NAME] == value  # delivered unaltered
    wsgi_header = header.encode("utf-8").decode("latin-1")  # PEP 3333: bytes as latin-1
    response = Client().get(path, params, HTTP_COOKIE=wsgi_header)
    assert response.status_code == 200, response.content[:300]
    return response


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_cookie_is_an_empty_session_without_node_traffic(memcached_nodes, value) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes):
        bystanders = new_visitors("keep", 6)
        before = traffic(nodes)

        assert with_cookie(value, "/read/").json()["data"] == {}
        store = SessionStore(value)
        assert store.load() == {}
        assert store.exists(value) is False
        store.delete(value)
        assert moved(before, traffic(nodes)) == {}, "a hostile key reached a node"
        health = get_registry().health.values()
        assert all(h.state is NodeState.UP for h in health), "a hostile key quarantined a node"

        response = with_cookie(value, "/visit/", tag="fresh")
        assert response.json()["data"] == {"count": 1, "history": ["fresh"]}
        fresh = response.cookies[settings.SESSION_COOKIE_NAME].value
        assert fresh != value and node_of(fresh) in {"n1", "n2", "n3"}, fresh
        writes = moved(before, traffic(nodes))
        looked_up = {k: v for k, v in writes.items() if not k.startswith("cmd_set")}
        assert looked_up.keys() <= {"total_items"}, f"the write did more than create: {writes}"
        assert writes.get("cmd_set", 0) >= 1

        for visitor in bystanders:  # flush_all never ran: everybody else is still there
            visitor.check_read()
        assert all(node_stats(node.port)["cmd_flush"] == 0 for node in nodes)


def test_hostile_cookies_in_a_single_id_less_node_configuration(memcached_nodes) -> None:
    """With one ``host:port`` node a bare 32-char key is legal and is looked up (the positive
    control: the counters do see a lookup), while the hostile ones still never reach the node."""
    (node,) = memcached_nodes(1)
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": f"127.0.0.1:{node.port}"}):
        before = traffic([node])
        for name, value in HOSTILE.items():
            if name != "no_node_id_multi_node":
                assert SessionStore(value).load() == {}, name
        assert moved(before, traffic([node])) == {}, "a hostile key reached the node"

        assert SessionStore(BASE).load() == {}  # legal here, and absent
        assert moved(before, traffic([node])).get("get_misses", 0) >= 1
