"""HostVersions: the sticky-mode version table shared by the worker processes of one route."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock, SystemClock
from django_msm.core import keys as msm_keys
from django_msm.core.hostversions import _STRIDE, HostVersions
from django_msm.runtime import get_cluster, reset_cluster
from django_msm.session import SessionStore

ROOT = Path(__file__).resolve().parent.parent


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


# Another process of the host, started fresh (a fork of this multi-threaded test process could
# deadlock in the child, which made this test fail once in a CI run on Python 3.13).
_OTHER_PROCESS = """
import sys, time
from django_msm.clock import SystemClock
from django_msm.core.hostversions import HostVersions
table = HostVersions(sys.argv[1], 64, 5.0, SystemClock())
table.put("k", b"42")
print("written", flush=True)
sys.stdin.read()  # hold the table open until the test has read it
"""


def test_the_table_is_shared_between_processes(path):
    other = subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS, path], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "written\n"
        assert HostVersions(path, 64, 5.0, SystemClock()).get("k") == b"42"
    finally:
        other.communicate(timeout=30)
    assert other.returncode == 0


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


# -- the table's file: per account, never an error, removed by its last user -------------------
def test_the_last_user_to_close_the_table_removes_it(tmp_path):
    path = HostVersions.path_for("app|r1", str(tmp_path))
    assert os.path.basename(path).endswith(f"-u{os.geteuid()}")
    first, second = (HostVersions(path, 64, 5.0, SystemClock()) for _ in range(2))
    first.put("k", b"7")
    first.close()
    first.close()  # twice is harmless
    assert os.path.exists(path) and second.get("k") == b"7"
    second.close()
    assert os.listdir(tmp_path) == []


_OPEN_AND_WAIT = """
import sys, time
from django_msm.clock import SystemClock
from django_msm.core.hostversions import HostVersions
table = HostVersions(sys.argv[1], 64, 5.0, SystemClock())
print("opened", flush=True)
time.sleep(60)  # killed by the test, never closes
"""


def test_tables_left_by_dead_processes_are_removed_at_start(tmp_path):
    folder = str(tmp_path)
    dead_path = HostVersions.path_for("dead", folder)
    worker = subprocess.Popen([sys.executable, "-c", _OPEN_AND_WAIT, dead_path], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "opened\n"
        live = HostVersions(HostVersions.path_for("live", folder), 64, 5.0, SystemClock())
        assert HostVersions.remove_stale(folder) == 0  # the worker still holds its table
    finally:
        worker.kill()
        worker.wait(10)
        if worker.stdout is not None:
            worker.stdout.close()
    assert os.path.exists(dead_path)  # killed: nobody closed it
    (tmp_path / "django_msm-notatable").write_bytes(b"x")
    assert HostVersions.remove_stale(folder) == 1
    assert sorted(os.listdir(folder)) == sorted(
        ["django_msm-notatable", os.path.basename(live.path)]
    )
    live.put("k", b"1")
    assert live.get("k") == b"1"
    live.close()


@pytest.mark.integration
def test_a_table_that_cannot_be_opened_is_one_warning_and_sessions_are_served(
    memcached_nodes, caplog
):
    servers = memcached_nodes(2)
    msm = {"MEMCACHED_NODES": ",".join(s.spec for s in servers), "STICKY": True, "ROUTE": "r1"}
    with override_settings(DJANGO_MSM=msm):
        path = get_cluster().sticky.host.path
        reset_cluster()  # its last user: the table is removed
        os.mkdir(path)  # what stands in its way now cannot be opened as a table
        try:
            with caplog.at_level(logging.WARNING, logger="django_msm.core.cluster"):
                for _ in range(3):
                    reset_cluster()
                    assert get_cluster().sticky.host is None
                    store = SessionStore()
                    store["n"] = 1
                    store.save()
                    assert SessionStore(store.session_key).load() == {"n": 1}
        finally:
            reset_cluster()
            os.rmdir(path)
    warnings = [r.getMessage() for r in caplog.records if r.name == "django_msm.core.cluster"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"sticky mode without the host version table {path} (")


NOBODY = 65534


def _serve_as_nobody(root_key: str, results) -> None:
    """A web worker under another account, started after root touched the table."""
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        reset_cluster()  # a new process: its own cluster, its own table
        host = get_cluster().sticky.host
        own = SessionStore()
        own["who"] = "nobody"
        own.save()
        loaded = [SessionStore(own.session_key).load(), SessionStore(root_key).load()]
        stat = os.stat(host.path)
        results.put((loaded, host.path, stat.st_uid))
        reset_cluster()  # the worker exits: it was the table's only user
        results.put(os.path.exists(host.path))
    except BaseException as exc:  # reported to the test
        results.put(repr(exc))


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="switching accounts needs root (CI runs as root)")
def test_root_touching_the_table_first_leaves_workers_of_another_account_serving(
    memcached_nodes,
):
    servers = memcached_nodes(2)
    msm = {"MEMCACHED_NODES": ",".join(s.spec for s in servers), "STICKY": True, "ROUTE": "r1"}
    with override_settings(DJANGO_MSM=msm):
        store = SessionStore()  # root, as `manage.py msm_status` or a shell would, first
        store["who"] = "root"
        store.save()
        assert SessionStore(store.session_key).load() == {"who": "root"}
        root_path = get_cluster().sticky.host.path
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        worker = context.Process(target=_serve_as_nobody, args=(store.session_key, results))
        worker.start()
        served = results.get(timeout=30)
        assert not isinstance(served, str), served  # the worker's exception
        exists_after = results.get(timeout=30)
        worker.join(10)
        assert worker.exitcode == 0
        loaded, nobody_path, owner = served
        assert loaded == [{"who": "nobody"}, {"who": "root"}]
        assert owner == NOBODY and nobody_path != root_path
        assert exists_after is False
        assert SessionStore(store.session_key).load() == {"who": "root"}  # root still serves
        assert get_cluster().sticky.host.path == root_path
