"""SESSION_BACKUP_ASYNC (bounded pool, per-session order, back-pressure), SESSION_BACKUP_TIMEOUT."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

from django_msm.core import keys as msm_keys
from django_msm.core.stats import statistics
from django_msm.core.writer import BackupWriter
from django_msm.runtime import get_cluster
from django_msm.session import SessionStore


def _msm(servers, **extra):
    nodes = ",".join(server.spec for server in servers)
    msm = {"MEMCACHED_NODES": nodes, "OPERATION_TIMEOUT": 1.0, **extra}
    return override_settings(DJANGO_MSM=msm)


def test_full_queue_runs_the_write_in_the_caller_thread(monkeypatch) -> None:
    # Counting is process-wide and a cluster built with ENABLE_STATISTICS=False turns it off
    # (tests/test_sticky_memory.py does): this test counts, so it says so (failed after it).
    monkeypatch.setattr(statistics, "enabled", True)
    writer = BackupWriter(threads=1, queue_size=1)
    release, ran_in = threading.Event(), []
    writer.submit("k", lambda: release.wait(5))  # occupies the worker
    time.sleep(0.05)
    writer.submit("k", lambda: ran_in.append("queued"))  # fills the queue
    before = statistics.snapshot()["counters"].get("backup_queue_full", 0)
    writer.submit("k", lambda: ran_in.append(threading.get_ident()))
    assert ran_in == [threading.get_ident()]
    assert statistics.snapshot()["counters"]["backup_queue_full"] == before + 1
    release.set()
    assert writer.flush(timeout=5)
    assert ran_in[-1] == "queued"


def test_flush_reports_writes_still_running() -> None:
    writer = BackupWriter(threads=1, queue_size=4)
    release = threading.Event()
    writer.submit("k", lambda: release.wait(5))
    assert writer.flush(timeout=0.05) is False
    release.set()
    assert writer.flush(timeout=5) is True


def test_failed_job_does_not_stop_the_worker() -> None:
    writer = BackupWriter(threads=1, queue_size=4)
    done = []
    writer.submit("k", lambda: 1 / 0)
    writer.submit("k", lambda: done.append(True))
    assert writer.flush(timeout=5)
    assert done == [True]


@pytest.mark.integration
def test_async_writes_land_in_order(memcached_nodes) -> None:
    servers = memcached_nodes(2)
    with _msm(servers, SESSION_BACKUP_ASYNC=True, BACKUP_THREAD_COUNT=2):
        store = SessionStore()
        store["n"] = 0
        store.save()
        key = store.session_key
        for n in range(1, 101):
            store = SessionStore(key)
            store["n"] = n
            store.save()
        assert get_cluster().writer.flush(timeout=10)
        assert SessionStore(key).load() == {"n": 100}
        assert SessionStore(key).session_key == key


@pytest.mark.integration
def test_async_write_to_a_dead_primary_reaches_the_backup(memcached_nodes) -> None:
    servers = memcached_nodes(2)
    with _msm(servers, SESSION_BACKUP_ASYNC=True):
        store = SessionStore()
        store["cart"] = ["apple"]
        store.save()
        key = store.session_key
        primary = {s.node_id: s for s in servers}[msm_keys.parse(key).node_id]
        store = SessionStore(key)
        store["cart"] = ["apple", "pear"]  # loaded from the live primary
        primary.kill()  # dies before the asynchronous write
        store.save()
        assert store.session_key == key  # the response keeps the key; the write is queued
        assert get_cluster().writer.flush(timeout=10)
        again = SessionStore(key)
        assert again.load() == {"cart": ["apple", "pear"]}
        again.save()  # relocation off the dead node keeps the latest content
        assert again.session_key != key
        assert SessionStore(again.session_key).load() == {"cart": ["apple", "pear"]}


@pytest.mark.integration
def test_a_hung_witness_delays_one_save_at_most_the_operation_timeout(memcached_nodes) -> None:
    """The backup node is the witness, where a save commits (core/witness.py): a save cannot
    treat a slow witness as gone after SESSION_BACKUP_TIMEOUT, or a move elsewhere could win
    meanwhile. The first save waits at most OPERATION_TIMEOUT; the witness is then quarantined
    and the next saves commit at home at once (issue 12)."""
    servers = memcached_nodes(2)
    with _msm(servers, OPERATION_TIMEOUT=1.0, SESSION_BACKUP_TIMEOUT=0.2):
        store = SessionStore()
        store["v"] = 1
        store.save()
        key = store.session_key
        primary_id = msm_keys.parse(key).node_id
        backup = next(s for s in servers if s.node_id != primary_id)
        backup.pause()
        try:
            elapsed = []
            for value in (2, 3):
                store = SessionStore(key)
                store["v"] = value
                started = time.monotonic()
                store.save()
                elapsed.append(time.monotonic() - started)
                key = store.session_key
        finally:
            backup.resume()
        assert elapsed[0] < 1.0 + 1.5, elapsed  # one OPERATION_TIMEOUT, with CI's margin
        assert elapsed[1] < 0.5, elapsed  # quarantined: nobody waits for it again
        assert SessionStore(key).load() == {"v": 3}
