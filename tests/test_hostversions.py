"""HostVersions: the sticky-mode version table shared by the worker processes of one route."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock, SystemClock
from django_msm.core import keys as msm_keys
from django_msm.core.hostversions import _STRIDE, HostVersions
from django_msm.runtime import get_cluster
from django_msm.session import SessionStore


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "versions")


def test_a_version_written_by_one_worker_is_read_by_another(path):
    clock = FakeClock()
    writer, reader = HostVersions(path, 64, 1.0, clock), HostVersions(path, 64, 1.0, clock)
    writer.put("k-n1.r1", b"17")
    assert reader.get("k-n1.r1") == b"17"
    writer.forget("k-n1.r1")
    assert reader.get("k-n1.r1") is None


def test_a_version_is_trusted_only_for_the_trust_window(path):
    clock = FakeClock()
    table = HostVersions(path, 64, 1.0, clock)
    table.put("k", b"17")
    clock.advance(0.9)
    assert table.get("k") == b"17"
    clock.advance(0.2)
    assert table.get("k") is None


def test_colliding_keys_never_answer_for_each_other(path):
    table = HostVersions(path, 1, 1.0, FakeClock())
    table.put("first", b"1")
    assert table.get("second") is None
    table.put("second", b"2")
    assert table.get("first") is None and table.get("second") == b"2"


def test_a_slot_being_written_reads_as_empty(path):
    table = HostVersions(path, 1, 1.0, FakeClock())
    table.put("k", b"1")
    seq = int.from_bytes(table._map[0:4], "little")
    table._map[0:4] = (seq + 1).to_bytes(4, "little")  # a writer is half-way through
    assert table.get("k") is None


def test_tokens_too_long_to_hold_are_forgotten(path):
    table = HostVersions(path, 8, 1.0, FakeClock())
    table.put("k", b"1")
    table.put("k", b"x" * 41)
    assert table.get("k") is None
    assert table._map.size() == 8 * _STRIDE


def _write_in_child(path: str, key: str, token: bytes) -> None:
    HostVersions(path, 64, 5.0, SystemClock()).put(key, token)


def test_the_table_is_shared_between_processes(path):
    process = multiprocessing.get_context("fork").Process(
        target=_write_in_child, args=(path, "k", b"42")
    )
    process.start()
    process.join(timeout=10)
    assert HostVersions(path, 64, 5.0, SystemClock()).get("k") == b"42"


@pytest.mark.integration
def test_a_vouched_local_copy_is_served_without_a_round_trip(memcached_nodes):
    servers = memcached_nodes(2)
    nodes = ",".join(s.spec for s in servers)
    msm = {"MEMCACHED_NODES": nodes, "STICKY": True, "ROUTE": "r1", "OPERATION_TIMEOUT": 2.0,
           "HOST_VERSION_TRUST": 30.0}
    with override_settings(DJANGO_MSM=msm):
        store = SessionStore()
        store["cart"] = ["apple"]
        store.save()
        key = store.session_key
        primary = {s.node_id: s for s in servers}[msm_keys.parse(key).node_id]
        primary.pause()  # a round trip to the primary would now wait 2 s
        try:
            started = time.monotonic()
            assert SessionStore(key).load() == {"cart": ["apple"]}
            assert time.monotonic() - started < 0.5
        finally:
            primary.resume()


@pytest.mark.integration
def test_another_workers_write_is_seen_at_once(memcached_nodes):
    servers = memcached_nodes(2)
    msm = {"MEMCACHED_NODES": ",".join(s.spec for s in servers), "STICKY": True, "ROUTE": "r1"}
    with override_settings(DJANGO_MSM=msm):
        store = SessionStore()
        store["n"] = 1
        store.save()
        key = store.session_key
        assert SessionStore(key).load() == {"n": 1}  # warm in this worker
        # Another worker of the route writes: its registry is its own, the table is shared.
        other_local = get_cluster().local
        get_cluster().sticky.local = type(other_local)(100, 10**6)
        writer = SessionStore(key)
        writer["n"] = 2
        writer.save()
        get_cluster().sticky.local = other_local  # back to this worker's (stale) copies
        assert other_local.get(key).copy.payload == b'{"n":1}'
        assert SessionStore(key).load() == {"n": 2}
