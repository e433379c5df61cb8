"""Session locks on real memcached: owner-only release, expiry, waits, and the middleware paths."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client, override_settings

from django_msm.core import keys as msm_keys
from django_msm.runtime import get_cluster, get_registry
from django_msm.session import SessionStore
from tests import locking_urls

pytestmark = pytest.mark.integration
MIDDLEWARE = ["django_msm.middleware.SessionMiddleware"]


def _msm(servers, **extra):
    msm = {"MEMCACHED_NODES": ",".join(s.spec for s in servers), "OPERATION_TIMEOUT": 1.0}
    return override_settings(
        DJANGO_MSM={**msm, **extra}, ROOT_URLCONF="tests.locking_urls", MIDDLEWARE=MIDDLEWARE
    )


def _session_with(data):
    store = SessionStore()
    store.update(data)
    store.save()
    return store.session_key


def _located(key):
    sid = msm_keys.parse(key)
    return sid, get_registry().node_for(sid)


def _lock_is_free(key):
    """Take and give back the lock once, without waiting."""
    sid, node = _located(key)
    store = get_registry().stores[node]
    proof = store.lock(f"lock:{sid}", b"probe", 1.0)
    if proof is None:
        return False
    store.unlock(f"lock:{sid}", proof)
    return True


def _client(key):
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = key
    return client


def test_second_locker_waits_out_its_budget_then_gets_none(memcached_nodes):
    with _msm(memcached_nodes(2), LOCK_WAIT_TIMEOUT=0.3):
        key = _session_with({"a": 1})
        locker = get_cluster().locker
        held = locker.acquire(*_located(key))
        started = time.monotonic()
        assert locker.acquire(*_located(key)) is None
        assert 0.25 <= time.monotonic() - started < 1.0
        locker.release(held)
        assert locker.acquire(*_located(key)) is not None


def test_a_late_release_never_deletes_the_next_owners_lock(memcached_nodes):
    with _msm(memcached_nodes(2), LOCK_EXPIRATION=1.0, LOCK_WAIT_TIMEOUT=4.0):
        key = _session_with({"a": 1})
        locker = get_cluster().locker
        first = locker.acquire(*_located(key))
        second = locker.acquire(*_located(key))  # gets it once the first expires
        assert second is not None and second.proof != first.proof
        locker.release(first)  # the first request finishes late: the second keeps its lock
        assert not _lock_is_free(key)
        locker.release(second)
        assert _lock_is_free(key)


def _hammer(key, count, delay):
    barrier = threading.Barrier(count)
    statuses = []

    def one():
        client = _client(key)
        barrier.wait(timeout=10)
        statuses.append(client.get(f"/count/?delay={delay}").status_code)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


@pytest.mark.parametrize("mode", ["all", "auto", "uriPattern:^/count/"])
def test_concurrent_increments_are_not_lost_with_locking(memcached_nodes, mode):
    with _msm(memcached_nodes(2), LOCKING_MODE=mode, LOCK_WAIT_TIMEOUT=20.0):
        key = _session_with({"n": 0})
        assert _hammer(key, 12, 0.02) == [200] * 12
        assert SessionStore(key).load()["n"] == 12


def test_without_locking_concurrent_increments_are_lost(memcached_nodes):
    with _msm(memcached_nodes(2), LOCKING_MODE="none"):
        key = _session_with({"n": 0})
        _hammer(key, 8, 0.05)
        assert SessionStore(key).load()["n"] < 8  # the lost updates locking exists to prevent


def test_lock_timeout_answers_503_with_retry_after(memcached_nodes):
    with _msm(memcached_nodes(2), LOCKING_MODE="all", LOCK_WAIT_TIMEOUT=0.2):
        key = _session_with({"n": 0})
        held = get_cluster().locker.acquire(*_located(key))
        response = _client(key).get("/count/")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert "Set-Cookie" not in str(response.cookies)
        get_cluster().locker.release(held)
        assert SessionStore(key).load()["n"] == 0


def test_a_request_that_outlived_its_lock_is_refused_not_written(memcached_nodes):
    """Issue 12: the next holder's increment stands; the late one answers 503, stores nothing."""
    with _msm(memcached_nodes(2), LOCKING_MODE="all", LOCK_EXPIRATION=1.0, LOCK_WAIT_TIMEOUT=6.0):
        key = _session_with({"n": 0})
        late: list[int] = []
        slow = threading.Thread(
            target=lambda: late.append(_client(key).get("/count/?delay=3.5").status_code)
        )
        slow.start()
        deadline = time.monotonic() + 5
        while _lock_is_free(key) and time.monotonic() < deadline:  # the slow request holds it
            time.sleep(0.01)
        assert _client(key).get("/count/").status_code == 200  # once the slow one's lock lapsed
        slow.join(timeout=30)
        assert late == [503]
        assert SessionStore(key).load()["n"] == 1


def test_proceed_policy_runs_unlocked(memcached_nodes):
    servers = memcached_nodes(2)
    with _msm(servers, LOCKING_MODE="all", LOCK_WAIT_TIMEOUT=0.2, LOCK_TIMEOUT_POLICY="proceed"):
        key = _session_with({"n": 0})
        held = get_cluster().locker.acquire(*_located(key))
        assert _client(key).get("/count/").status_code == 200
        get_cluster().locker.release(held)
        assert SessionStore(key).load()["n"] == 1


@pytest.mark.parametrize("how", ["error", "flush", "cycle", "stream", "five_hundred", "ok"])
def test_locks_never_outlive_the_request(memcached_nodes, how):
    with _msm(memcached_nodes(2), LOCKING_MODE="all"):
        key = _session_with({"n": 0})
        response = _client(key).get(f"/ends/{how}/")
        assert response.status_code == {"error": 500, "five_hundred": 500}.get(how, 200)
        if how == "stream":
            assert b"".join(response.streaming_content) == b"ab"
        assert _lock_is_free(key)


def test_decorators_override_the_mode(memcached_nodes):
    locking_urls.SEEN.clear()
    with _msm(memcached_nodes(2), LOCKING_MODE="all"):
        key = _session_with({"n": 0})
        assert _client(key).get("/marked/reader/").status_code == 200
    with _msm(memcached_nodes(2), LOCKING_MODE="none"):
        key = _session_with({"n": 0})
        assert _client(key).get("/marked/writer/").status_code == 200
    assert locking_urls.SEEN == {"marked_reader": False, "marked_writer": True}


def test_auto_mode_learns_read_only_views_and_never_trusts_a_modifier_again(memcached_nodes):
    def locked(path):
        _client(key).get(path)
        return locking_urls.SEEN["read" if path == "/read/" else "sometimes_write"]

    with _msm(memcached_nodes(2), LOCKING_MODE="auto"):
        key = _session_with({"n": 0})
        assert [locked("/read/") for _ in range(3)] == [True, False, False]
        assert locked("/sometimes/") is True
        assert locked("/sometimes/") is False
        assert locked("/sometimes/?write=1") is False  # trusted, and it modified
        assert [locked("/sometimes/") for _ in range(2)] == [True, True]
