"""RedisStore against real redis-server processes: command semantics, errors, connections, checks.

Every assertion about what is stored is made with a plain redis-py client of the server, behind
the adapter's back, so the adapter cannot vouch for itself.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.core.checks import Error
from django.test import override_settings
from django_redis import get_redis_connection
from redis.exceptions import ResponseError

from django_msm import checks
from django_msm.clock import SystemClock
from django_msm.core.nodes import Node, NodeKind, parse_nodes
from django_msm.exceptions import ConfigurationError, NodeUnavailable
from django_msm.runtime import cache_client, get_cluster
from django_msm.session import SessionStore
from django_msm.stores import create_store, redis_wire
from django_msm.stores.base import value_token
from django_msm.stores.redis import RedisStore
from tests.redis_servers import RedisProcess, pings, wait_until
from tests.test_locking import _hammer as hammer
from tests.test_locking import _located as located
from tests.test_locking import _lock_is_free as lock_is_free
from tests.test_locking import _msm as locking_settings
from tests.test_locking import _session_with as session_with

pytestmark = pytest.mark.integration

VALUE = b"\x00binary\r\nSET x y\r\n\xff"


def redis_cache(server: RedisProcess, **options: Any) -> dict[str, Any]:
    """A django-redis CACHES entry for ``server``."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"SOCKET_TIMEOUT": 1.0, "SOCKET_CONNECT_TIMEOUT": 1.0, **options},
    }


@pytest.fixture
def server(redis_nodes) -> RedisProcess:
    return redis_nodes(1)[0]


@pytest.fixture
def store(server: RedisProcess) -> Iterator[RedisStore]:
    store = RedisStore(parse_nodes(server.spec)[0], timeout=0.5)
    yield store
    store.close()


@pytest.fixture
def raw(server: RedisProcess) -> Iterator[Any]:
    client = server.client()
    yield client
    client.close()


# -- command semantics -------------------------------------------------------------------------
def test_add_stores_only_absent_keys_with_their_ttl(store: RedisStore, raw: Any) -> None:
    assert store.add("k", VALUE, 100) is True
    assert raw.get("k") == VALUE
    assert 95 <= raw.ttl("k") <= 100
    assert store.add("k", b"other", 100) is False
    assert raw.get("k") == VALUE


def test_replace_never_creates_and_rewrites_present_keys(store: RedisStore, raw: Any) -> None:
    assert store.replace("k", VALUE, 100) is False
    assert raw.exists("k") == 0
    raw.set("k", b"old", ex=10)
    assert store.replace("k", VALUE, 100) is True
    assert raw.get("k") == VALUE
    assert raw.ttl("k") > 10


def test_set_get_delete(store: RedisStore, raw: Any) -> None:
    assert store.get("k") is None
    store.set("k", VALUE, 100)
    assert store.get("k") == VALUE == raw.get("k")
    store.set("k", b"new", 100)
    assert raw.get("k") == b"new"
    assert store.delete("k") is True
    assert store.delete("k") is False
    assert raw.exists("k") == 0


def test_touch_sets_a_new_expiry_without_rewriting(store: RedisStore, raw: Any) -> None:
    assert store.touch("k", 100) is False
    assert raw.exists("k") == 0
    raw.set("k", VALUE, ex=10)
    assert store.touch("k", 1000) is True
    assert raw.get("k") == VALUE
    assert 990 <= raw.ttl("k") <= 1000


def test_ttls_past_thirty_days_stay_relative(store: RedisStore, raw: Any) -> None:
    """memcached reads such exptimes as unix times; Redis does not, so nothing is translated."""
    ttl = 60 * 60 * 24 * 90
    store.set("k", VALUE, ttl)
    assert ttl - 5 <= raw.ttl("k") <= ttl


@pytest.mark.parametrize("ttl", [0, -1, -3600])
def test_expired_ttls_give_memcacheds_answers_and_leave_nothing(
    store: RedisStore, raw: Any, ttl: int
) -> None:
    assert store.add("k", VALUE, ttl) is True  # absent: "stored", and expired at once
    assert raw.exists("k") == 0
    raw.set("k", VALUE)
    assert store.add("k", VALUE, ttl) is False  # present: not stored
    assert store.replace("k", b"x", ttl) is True
    assert raw.exists("k") == 0
    assert store.replace("k", b"x", ttl) is False
    raw.set("k", VALUE)
    assert store.touch("k", ttl) is True
    assert raw.exists("k") == 0
    assert store.touch("k", ttl) is False
    raw.set("k", VALUE)
    store.set("k", b"x", ttl)
    assert raw.exists("k") == 0


def test_version_is_the_values_sha1_and_moves_nothing(store: RedisStore, raw: Any) -> None:
    assert store.version("k") is None
    raw.set("k", VALUE)
    assert store.version("k") == hashlib.sha1(VALUE).hexdigest().encode() == value_token(VALUE)
    raw.set("k", b"changed")
    assert store.version("k") == value_token(b"changed")
    assert raw.get("k") == b"changed"


def test_versioned_writes_agree_with_version(store: RedisStore, raw: Any) -> None:
    """Sticky mode compares these tokens: a rewrite changes it, a touch does not."""
    token = store.add_versioned("k", VALUE, 100)
    assert token is not None and token == store.version("k")
    assert store.add_versioned("k", VALUE, 100) is None
    assert store.get_versioned("k") == (VALUE, token)
    store.touch("k", 200)
    assert store.version("k") == token
    new = store.replace_versioned("k", b"v2", 100)
    assert new is not None and new != token and new == store.version("k")
    raw.delete("k")
    assert store.replace_versioned("k", b"v3", 100) is None
    assert raw.exists("k") == 0


# -- locks -------------------------------------------------------------------------------------
def test_lock_is_exclusive_and_released_only_by_its_owner(store: RedisStore, raw: Any) -> None:
    proof = store.lock("lock:k", b"owner-a", 5.0)
    assert proof is not None
    assert 4000 <= raw.pttl("lock:k") <= 5000
    assert store.lock("lock:k", b"owner-b", 5.0) is None
    assert store.unlock("lock:k", b"owner-b") is False
    assert raw.get("lock:k") == b"owner-a"
    assert store.unlock("lock:k", proof) is True
    assert raw.exists("lock:k") == 0
    assert store.unlock("lock:k", proof) is False


def test_expired_lock_taken_by_another_is_not_released_late(store: RedisStore, raw: Any) -> None:
    late = store.lock("lock:k", b"owner-a", 0.05)
    assert late is not None
    assert raw.pttl("lock:k") <= 50
    deadline = time.monotonic() + 5
    while raw.exists("lock:k") and time.monotonic() < deadline:
        time.sleep(0.01)
    proof = store.lock("lock:k", b"owner-b", 5.0)
    assert proof is not None
    assert store.unlock("lock:k", late) is False  # the first owner outlived its lock
    assert raw.get("lock:k") == b"owner-b"


def test_url_database_is_used(server: RedisProcess) -> None:
    store = RedisStore(Node("r1", NodeKind.REDIS, f"redis://127.0.0.1:{server.port}/3"), 0.5)
    raw3 = server.client()
    raw3.select(3)  # a fresh client's one connection: SELECT sticks
    try:
        store.set("k", VALUE, 100)
        assert raw3.get("k") == VALUE
        assert server.dbsize() == 0  # db 0 untouched
    finally:
        store.close()
        raw3.close()


def test_ping_answers(store: RedisStore, server: RedisProcess) -> None:
    server.reset_stats()
    store.ping()
    assert server.commandstats().get("ping") == 1


# -- errors ----------------------------------------------------------------------------------
def test_killed_node_raises_refused_node_unavailable(
    store: RedisStore, server: RedisProcess
) -> None:
    store.set("k", VALUE, 100)  # a pooled connection exists
    server.kill()
    calls = [
        lambda: store.get("k"), lambda: store.add("k", VALUE, 10),
        lambda: store.replace("k", VALUE, 10), lambda: store.set("k", VALUE, 10),
        lambda: store.touch("k", 10), lambda: store.delete("k"), store.ping,
        lambda: store.version("k"),
    ]
    for call in calls:
        with pytest.raises(NodeUnavailable) as info:
            call()
        assert info.value.node_id == "r1"
        assert info.value.__cause__ is info.value.cause
        # Refused (nobody listens) tells the core the node is dead, not merely slow.
        assert info.value.refused is True, info.value


def test_paused_node_times_out_within_the_operation_timeout(
    store: RedisStore, server: RedisProcess
) -> None:
    store.set("k", VALUE, 100)
    server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(NodeUnavailable) as info:
            store.get("k")
        waited = time.monotonic() - start
    finally:
        server.resume()
    assert info.value.refused is False
    assert 0.4 <= waited < 0.5 + 1.5, waited  # one timeout of 0.5 s, no retries
    assert store.get("k") == VALUE  # the pool recovers once the node answers


def test_restarted_node_is_used_again_by_the_same_store(
    store: RedisStore, server: RedisProcess
) -> None:
    store.set("k", VALUE, 100)
    server.restart_empty()
    assert store.get("k") is None  # stale pooled connections are replaced, not reported
    store.set("k", VALUE, 100)
    assert store.get("k") == VALUE


def _freshened(conn: Any) -> bool:
    redis_wire.freshen(conn)
    return conn._sock is None


def test_an_idle_connection_is_checked_without_waiting(store: RedisStore) -> None:
    """The check before a reused connection's command: one that the server closed, or with
    bytes nobody asked for, is reconnected; a ready one is kept. The check never waits for
    the socket's read timeout, and reads nothing from the socket."""
    store.set("k", VALUE, 100)
    conn = store._pool._take()
    try:
        sock = conn._sock
        started = time.monotonic()
        redis_wire.freshen(conn)
        assert time.monotonic() - started < 0.4  # the 0.5 s read timeout is not waited for
        assert conn._sock is sock  # ready: kept
        conn.send_command("PING")  # a reply nobody reads: bytes waiting
        wait_until(lambda: _freshened(conn), 5, "the connection with a reply waiting is dropped")
        conn.connect()
        conn.send_command("QUIT")  # the server closes its end
        wait_until(lambda: _freshened(conn), 5, "the connection the server closed is dropped")
    finally:
        conn.disconnect()
    assert store.get("k") == VALUE


def test_scripts_the_server_lost_are_sent_again(store: RedisStore, raw: Any) -> None:
    """The scripts go by SHA (EVALSHA); after a restart or SCRIPT FLUSH the server no longer
    knows them, and the store sends them in full instead of reporting the node down."""
    token = store.add_versioned("k", VALUE, 100)
    assert token is not None
    for call in (
        lambda: store.version("k") == token,
        lambda: store.cas("k", b"new", 100, token) is not None,
        lambda: store.delete_if("k", store.version("k") or b"") is True,
        lambda: store.unlock("lock", store.lock("lock", b"me", 5.0) or b"") is True,
    ):
        raw.script_flush()
        assert call()
    assert raw.get("k") is None and raw.get("lock") is None


def test_a_lost_script_in_a_batch_is_sent_again_after_the_other_replies(
    store: RedisStore, raw: Any
) -> None:
    """In a pipeline the EVALSHA's NOSCRIPT reply is read in its place; its EVAL follows once
    every reply of the batch is read, so no reply is taken for another's."""
    token = store.add_versioned("k", VALUE, 100)
    assert token is not None
    raw.script_flush()
    replies = store.start_many([("get_versioned", ("k",)), ("cas", ("k", b"new", 100, token)),
                                ("get_versioned", ("absent",))])
    assert replies[2]() == (None, None) and replies[0]() == (VALUE, token)
    assert replies[1]() == value_token(b"new") and raw.get("k") == b"new"
    assert store.get("k") == b"new"  # the connection is in step


def test_an_error_reply_raises_and_the_connection_is_not_reused(
    store: RedisStore, raw: Any
) -> None:
    raw.rpush("a-list", b"x")
    with pytest.raises(NodeUnavailable):
        store.get("a-list")  # WRONGTYPE
    assert store.get("k") is None and store.add("k", VALUE, 100) is True


class _Opaque:
    """A redis-py connection seen without the internals ``stores.resp`` uses, as a future
    redis-py might show it: its own methods only."""

    def __init__(self, conn: Any):
        self.send_packed_command = conn.send_packed_command
        self.pack_commands = conn.pack_commands
        self.read_response = conn.read_response


def test_a_connection_without_the_internals_used_goes_through_redis_py(
    store: RedisStore, raw: Any
) -> None:
    conn = store._pool._take()
    try:
        opaque: Any = _Opaque(conn)
        assert redis_wire.command(opaque, "SET", "k", VALUE) == b"OK"
        assert redis_wire.pipelined(opaque, [("GET", "k"), ("GET", "absent")]) == [VALUE, None]
        token = value_token(VALUE)
        raw.script_flush()
        cas = store._split("cas", "k", b"new", 100, token)
        assert cas is not None
        redis_wire.send(opaque, [cas[0]])
        assert redis_wire.answers(opaque, [cas]) == [value_token(b"new")]
        with pytest.raises(ResponseError):
            redis_wire.command(opaque, "INCR", "k")  # not an integer
    finally:
        conn.disconnect()
    assert raw.get("k") == b"new"


def test_url_clients_are_bounded_by_the_operation_and_backup_timeouts(
    server: RedisProcess,
) -> None:
    store = RedisStore(parse_nodes(server.spec)[0], timeout=0.75, backup_timeout=0.25)
    try:
        for client, timeout in ((store.client, 0.75), (store.backup_client, 0.25)):
            kwargs = client.connection_pool.connection_kwargs
            assert kwargs["socket_timeout"] == timeout
            assert kwargs["socket_connect_timeout"] == timeout
            assert kwargs["retry"].get_retries() == 0
        assert store.owns_client is True
    finally:
        store.close()


def test_backup_writes_to_a_paused_node_wait_only_the_backup_timeout(
    server: RedisProcess,
) -> None:
    store = RedisStore(parse_nodes(server.spec)[0], timeout=2.0, backup_timeout=0.2)
    try:
        store.set("k", VALUE, 100)
        server.pause()
        try:
            start = time.monotonic()
            with pytest.raises(NodeUnavailable):
                store.set("k", VALUE, 100)
            waited = time.monotonic() - start
        finally:
            server.resume()
        assert 0.15 <= waited < 0.2 + 1.0, waited  # the backup bound, not the 2 s one
    finally:
        store.close()


# -- id:cache:ALIAS -----------------------------------------------------------------------------
def test_cache_alias_uses_django_redis_client(server: RedisProcess, raw: Any) -> None:
    with override_settings(CACHES={"default": redis_cache(server, SOCKET_TIMEOUT=0.6)}):
        node = Node("c1", NodeKind.CACHE, "default")
        store = create_store(node, 5.0, 0.1, SystemClock(), cache_client("default"))
        assert isinstance(store, RedisStore)
        client = get_redis_connection("default")
        assert store.client.connection_pool is client.connection_pool
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 0.6
        assert store.owns_client is False
        store.set("k", VALUE, 100)
        assert raw.get("k") == VALUE
        store.close()
        caches["default"].set("still-open", 1)  # django-redis's own client is not closed
        assert caches["default"].get("still-open") == 1
        assert store.get("k") == VALUE


def test_cache_alias_that_is_not_django_redis_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'default' is not a django-redis cache"):
        cache_client("default")
    with pytest.raises(ConfigurationError, match="'nope' is not a django-redis cache"):
        cache_client("nope")


def test_cache_alias_node_without_its_client_is_a_configuration_error() -> None:
    """The store adapter never resolves Django cache aliases itself (runtime.py does)."""
    with pytest.raises(ConfigurationError, match="needs the alias's client passed in"):
        RedisStore(Node("c1", NodeKind.CACHE, "default"), 1.0)


def test_create_store_dispatches_redis_forms(server: RedisProcess) -> None:
    for spec in (server.spec, server.url):
        store = create_store(parse_nodes(spec)[0], 1.0, 0.1, SystemClock())
        try:
            assert isinstance(store, RedisStore)
            store.set("k", VALUE, 10)
            assert store.get("k") == VALUE
        finally:
            store.close()


# -- rediss:// (TLS) -------------------------------------------------------------------------------
def _self_signed(workdir: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed (Debian: apt-get install -y openssl)")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisProcess, Path]]:
    cert, key = _self_signed(tmp_path)
    server = RedisProcess("t1")
    server.extra_args = (
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    )
    server.answers = lambda: _tls_answers(server.port, cert)  # type: ignore[method-assign]
    server.start()
    yield server, cert
    server.stop()


def _tls_answers(port: int, cert: Path) -> bool:
    import redis

    return pings(redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_timeout=0.5
    ))


def test_rediss_node_talks_tls_with_a_verified_certificate(
    tls_server: tuple[RedisProcess, Path],
) -> None:
    server, cert = tls_server
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={cert}"
    store = create_store(parse_nodes(f"t1:{url}")[0], 1.0, 0.5, SystemClock())
    plain = create_store(parse_nodes(f"p1:redis://127.0.0.1:{server.port}/0")[0], 1.0, 0.5,
                         SystemClock())
    try:
        store.set("k", VALUE, 100)
        assert store.get("k") == VALUE
        with pytest.raises(NodeUnavailable):  # the port speaks TLS only: the URL's scheme counts
            plain.get("k")
    finally:
        store.close()
        plain.close()


# -- system checks ------------------------------------------------------------------------------
def reports(nodes: str, caches_setting: dict[str, Any] | None = None) -> list[Any]:
    extra = {} if caches_setting is None else {"CACHES": caches_setting}
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": nodes}, **extra):
        return checks.validate()


def test_every_redis_form_passes_the_checks(server: RedisProcess) -> None:
    nodes = f"r1:{server.url} r2:rediss://h:6380/1 m1:127.0.0.1:11211 c1:cache:sessions"
    assert reports(nodes, {"default": redis_cache(server), "sessions": redis_cache(server)}) == []
    single = reports("redis://127.0.0.1:6379")  # the single id-less form: no backup copy
    assert [message.id for message in single] == ["django_msm.W028"]


def test_e013_cache_alias_not_in_caches_lists_the_aliases() -> None:
    assert reports("c1:cache:sessions") == [Error(
        "DJANGO_MSM['MEMCACHED_NODES'] node 'c1' names cache 'sessions', which is not in CACHES.",
        hint="Add CACHES['sessions'] with BACKEND 'django_redis.cache.RedisCache' "
        "(CACHES has 'default').",
        id="django_msm.E013",
    )]
    caches_setting = {"default": {"BACKEND": "x"}, "sessions": {"BACKEND": "x"}}
    assert reports("c1:cache:sesions", caches_setting) == [Error(
        "DJANGO_MSM['MEMCACHED_NODES'] node 'c1' names cache 'sesions', which is not in CACHES.",
        hint="Did you mean 'sessions'? Add CACHES['sesions'] with BACKEND "
        "'django_redis.cache.RedisCache' (CACHES has 'default', 'sessions').",
        id="django_msm.E013",
    )]


@pytest.mark.parametrize("backend", [
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.redis.RedisCache",  # Django's own: no raw client to share
    "no.such.Backend",
])
def test_e014_cache_alias_not_served_by_django_redis(backend: str) -> None:
    found = reports("c1:cache:default", {"default": {"BACKEND": backend}})
    assert found == [Error(
        "DJANGO_MSM['MEMCACHED_NODES'] node 'c1': CACHES['default'] is not a django-redis cache "
        f"(BACKEND {backend!r}).",
        hint="Use BACKEND 'django_redis.cache.RedisCache' for it, or an 'id:redis://' node.",
        id="django_msm.E014",
    )]


def test_e015_cache_alias_without_socket_timeout(server: RedisProcess) -> None:
    entry = redis_cache(server)
    entry["OPTIONS"] = {"SOCKET_CONNECT_TIMEOUT": 1.0}
    assert reports("c1:cache:default", {"default": entry}) == [Error(
        "DJANGO_MSM['MEMCACHED_NODES'] node 'c1': CACHES['default'] has no socket timeout.",
        hint="Set CACHES['default']['OPTIONS']['SOCKET_TIMEOUT'] (seconds, such as 1.0): "
        "without it a hung Redis server holds every request.",
        id="django_msm.E015",
    )]
    entry["OPTIONS"] = {"CONNECTION_POOL_KWARGS": {"socket_timeout": 0.5}}
    found = reports("c1:cache:default", {"default": entry})
    assert [message.id for message in found] == ["django_msm.W028"]  # one node: no backup copy


@pytest.mark.parametrize(("url", "error"), [
    ("redis://127.0.0.1:port/0", "Port could not be cast to integer value as 'port'"),
    ("rediss://127.0.0.1:99999/0", "Port out of range 0-65535"),
])
def test_e016_redis_url_that_does_not_parse(url: str, error: str) -> None:
    assert reports(f"r1:{url}") == [Error(
        f"DJANGO_MSM['MEMCACHED_NODES'] node 'r1' has an invalid Redis URL {url!r}: {error}.",
        hint="Use 'id:redis://host:port/db' or 'id:rediss://host:port/db'.",
        id="django_msm.E016",
    )]


# -- session locks through the engine --------------------------------------------------------------
def test_concurrent_increments_are_not_lost_with_locking_on_redis(redis_nodes) -> None:
    with locking_settings(redis_nodes(2), LOCKING_MODE="all", LOCK_WAIT_TIMEOUT=20.0):
        key = session_with({"n": 0})
        assert hammer(key, 12, 0.02) == [200] * 12
        assert SessionStore(key).load()["n"] == 12


def test_a_late_release_never_deletes_the_next_owners_redis_lock(redis_nodes) -> None:
    with locking_settings(redis_nodes(2), LOCK_EXPIRATION=1.0, LOCK_WAIT_TIMEOUT=4.0):
        key = session_with({"a": 1})
        locker = get_cluster().locker
        first = locker.acquire(*located(key))
        second = locker.acquire(*located(key))  # gets it once the first expires
        assert first is not None and second is not None and second.proof != first.proof
        locker.release(first)
        assert not lock_is_free(key)
        locker.release(second)
        assert lock_is_free(key)
