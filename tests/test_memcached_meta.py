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
    MemcacheUnknownError,
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


def test_replies_of_commands_sent_at_once_are_cut_apart(client) -> None:
    """``replies``: a batch's replies arrive in one stream, several to a recv or one split
    over many; each is cut at its own end, values with CRLF inside included."""
    big = b"x\r\nVA 3\r\n" * 20_000  # 180 KB: several recvs
    client.set("big", big)
    client.set("small", b"ab\r\ncd")
    commands = [b"mg big v c\r\n", b"mg absent v c\r\n", b"ms new 2 T60 ME c\r\nhi\r\n",
                b"ms new 2 T60 ME\r\nno\r\n", b"mg small v\r\n"]
    meta.send(client, b"".join(commands))
    answers = meta.replies(client, len(commands))
    assert meta.versioned(*answers[0]) == (big, client.gets("big")[1])
    assert meta.versioned(*answers[1]) == (None, None)
    assert answers[2][0].startswith(b"HD c") and answers[3] == (b"NS", None)
    assert answers[4] == (b"VA 6", b"ab\r\ncd")
    assert client.get("new") == b"hi"  # the socket is in step for the next command


@pytest.mark.parametrize(("reply", "error"), [
    (b"HD\r\nVA 10\r\nshort", MemcacheUnexpectedCloseError),  # the second reply cut off
    (b"HD\r\nVA x\r\n", MemcacheUnknownError),  # no size
    (b"HD\r\nSERVER_ERROR out of memory\r\n", MemcacheServerError),
    (b"HD\r\nHD\r\nHD\r\n", MemcacheUnknownError),  # more than was asked for
])
def test_a_broken_batch_of_replies_raises_what_the_store_translates(reply, error) -> None:
    port, thread = _one_reply_server(reply)
    raw = Client(("127.0.0.1", port), connect_timeout=2, timeout=2)
    try:
        meta.send(raw, b"mn\r\nmn\r\n")
        with pytest.raises(error):
            meta.replies(raw, 2)
    finally:
        raw.close()
        thread.join(timeout=5)
