"""The meta-command reads (stores/meta.py) on a real memcached, and on a server that misbehaves."""

from __future__ import annotations

import socket
import threading

import pytest
from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from django_msm.stores import meta

pytestmark = pytest.mark.integration


@pytest.fixture
def client(memcached_nodes):
    (server,) = memcached_nodes(1)
    raw = Client(("127.0.0.1", server.port), connect_timeout=2, timeout=2, default_noreply=False)
    yield raw
    raw.close()


@pytest.mark.parametrize("size", [0, 1, 2, 1000, 64 * 1024, 900 * 1024])
def test_values_of_every_size_read_back_and_the_socket_stays_in_step(client, size) -> None:
    value = (b"ab\r\nEND\r\nVA 3\r\n" * (size // 15 + 1))[:size]
    client.set("k", value)
    assert meta.get(client, "k") == value
    fetched, cas = meta.get_versioned(client, "k")
    assert fetched == value and cas == client.gets("k")[1] == meta.version(client, "k")
    assert client.get("k") == value  # pymemcache's own next command reads its own reply


def test_a_miss(client) -> None:
    assert meta.get(client, "absent") is None
    assert meta.get_versioned(client, "absent") == (None, None)
    assert meta.version(client, "absent") is None


@pytest.mark.parametrize(
    "key", ["with space", "new\nline", "tab\tbed", "nul\x00", "x" * 251, "clé"]
)
def test_keys_memcached_would_misread_are_refused_before_sending(client, key) -> None:
    with pytest.raises(MemcacheIllegalInputError):
        meta.get(client, key)


def _one_reply_server(reply: bytes) -> tuple[int, threading.Thread]:
    """A server that answers the first command with ``reply`` and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize(("reply", "error"), [
    (b"VA 10\r\nshort", MemcacheUnexpectedCloseError),  # the value cut off
    (b"VA 1", MemcacheUnexpectedCloseError),  # the line cut off
    (b"", MemcacheUnexpectedCloseError),
    (b"SERVER_ERROR out of memory\r\n", MemcacheServerError),
])
def test_a_broken_reply_raises_what_the_store_translates(reply, error) -> None:
    port, thread = _one_reply_server(reply)
    raw = Client(("127.0.0.1", port), connect_timeout=2, timeout=2)
    try:
        with pytest.raises(error):
            meta.get(raw, "k")
    finally:
        raw.close()
        thread.join(timeout=5)
