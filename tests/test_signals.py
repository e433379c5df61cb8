"""Issue 6: the signals django_msm sends, on real memcached nodes, and the documented receiver."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from django_msm import signals
from django_msm.core import keys as msm_keys
from django_msm.session import SessionStore

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict]]]:
    """Every django_msm signal sent during the test, as (name, arguments)."""
    log: list[tuple[str, dict]] = []
    receivers = {}
    for name in ("session_relocated", "session_taken_over", "node_down", "node_up"):
        def receiver(sender, signal, _name=name, **kwargs):
            log.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield log
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def msm(servers, **extra) -> override_settings:
    spec = ",".join(server.spec for server in servers)
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 0.5, **extra}
    )


def session_on(node_id: str, **data) -> str:
    """Create sessions until one lands on ``node_id`` (placement is random); return its key."""
    for _ in range(200):
        store = SessionStore()
        store.update(data)
        store.save()
        if msm_keys.parse(store.session_key).node_id == node_id:
            return store.session_key
    raise AssertionError(f"no session landed on {node_id}")


def test_node_down_then_node_up(memcached_nodes, received):
    servers = memcached_nodes(2)
    with msm(servers, RETRY_TIMEOUT=0.2):
        key = session_on("n1", cart=["apple"])
        received.clear()
        servers[0].kill()
        assert SessionStore(key)["cart"] == ["apple"]  # served from the backup on n2
        assert [name for name, _ in received] == ["node_down"]
        assert received[0][1]["node_id"] == "n1"
        assert received[0][1]["error"]  # the cause, e.g. the pooled connection closing
        servers[0].start()
        time.sleep(0.3)  # past RETRY_TIMEOUT: the next call to n1 is a probe
        SessionStore(key).load()
    assert [name for name, _ in received] == ["node_down", "node_up"]
    assert received[1][1] == {"node_id": "n1"}


def test_session_relocated_when_its_node_died(memcached_nodes, received):
    servers = memcached_nodes(2)
    with msm(servers):
        key = session_on("n1", cart=["apple"])
        servers[0].kill()
        store = SessionStore(key)
        assert store["cart"] == ["apple"]
        store.save()
        moved = [kwargs for name, kwargs in received if name == "session_relocated"]
        assert moved == [{"old_key": key, "new_key": store.session_key}]
        assert msm_keys.parse(store.session_key).node_id == "n2"
        assert SessionStore(store.session_key)["cart"] == ["apple"]


def test_session_taken_over_by_another_route(memcached_nodes, received):
    servers = memcached_nodes(2)
    with msm(servers, ROUTE="web1"):
        key = session_on("n1", cart=["pear"])
    assert key.endswith(".web1")
    with msm(servers, ROUTE="web2"):
        store = SessionStore(key)
        assert store["cart"] == ["pear"]
        store.save()
        assert SessionStore(store.session_key)["cart"] == ["pear"]
    taken = [kwargs for name, kwargs in received if name == "session_taken_over"]
    assert taken == [{"old_key": key, "new_key": store.session_key}]
    assert store.session_key.endswith(".web2")
    assert not [name for name, _ in received if name == "session_relocated"]


def documented_receiver() -> str:
    """The example receiver of docs/operations.md (the first python block of "Signals")."""
    section = DOCS.read_text().split("## Signals", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_example_receiver_works(memcached_nodes, caplog):
    namespace: dict = {}
    exec(compile(documented_receiver(), str(DOCS), "exec"), namespace)  # noqa: S102
    servers = memcached_nodes(2)
    try:
        with msm(servers), caplog.at_level(logging.INFO):
            key = session_on("n2", cart=["fig"])
            servers[1].kill()
            store = SessionStore(key)
            store.load()
            store.save()
    finally:
        for name in ("session_relocated", "session_taken_over", "node_down", "node_up"):
            getattr(signals, name).disconnect(dispatch_uid=f"ops-{name}")
    messages = [record.getMessage() for record in caplog.records if record.name == "ops.sessions"]
    assert messages[0].startswith("cache node n2 is down: ")
    assert messages[1:] == ["session moved from n2 to n1"]
    assert store.session_key.endswith("-n1")
