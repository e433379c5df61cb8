"""stores.resp: the Redis protocol the store speaks on its own connections. The reader is fed
through a socket that hands out a few bytes per ``recv``, so every reply is cut at every
boundary; the real server's side is in tests/test_redis_store.py and the store contract."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, NoScriptError, ResponseError

from django_msm.stores import resp


class Trickle:
    """A socket whose ``recv`` gives at most ``step`` bytes of ``data``, then b"" (closed)."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    def recv(self, size: int) -> bytes:
        chunk, self.data = self.data[: min(size, self.step)], self.data[min(size, self.step):]
        return chunk


def parse_error(text: str) -> Exception:
    return NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)


STREAM = (b"$5\r\nab\r\nc\r\n" b"$-1\r\n" b"+OK\r\n" b":42\r\n" b"-NOSCRIPT No script\r\n"
          b"-ERR wrong\r\n" b"_\r\n" b"*2\r\n$1\r\nx\r\n$-1\r\n" b"$0\r\n\r\n")


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64 * 1024])
def test_every_reply_type_is_read_whatever_the_recv_boundaries(step: int) -> None:
    replies = resp.Replies(Trickle(STREAM, step), parse_error)
    answers = [replies.read() for _ in range(9)]
    replies.done()
    assert answers[:4] == [b"ab\r\nc", None, b"OK", 42]
    assert isinstance(answers[4], NoScriptError) and isinstance(answers[5], ResponseError)
    assert answers[6:] == [None, [b"x", None], b""]


@pytest.mark.parametrize(("data", "count", "error"), [
    (b"$10\r\nshort", 1, RedisConnectionError),  # the server closed mid-reply
    (b"", 1, RedisConnectionError),
    (b"$3\r\nabcd\r\n", 1, InvalidResponse),  # longer than announced
    (b"%1\r\n", 1, InvalidResponse),  # a type the store never asks for
    (b":x\r\n", 1, InvalidResponse),
    (b"+OK\r\n+OK\r\n", 1, InvalidResponse),  # more replies than commands
])
def test_a_broken_reply_raises_a_redis_error(data: bytes, count: int, error: type) -> None:
    replies = resp.Replies(Trickle(data, 64 * 1024), parse_error)
    with pytest.raises(error):
        for _ in range(count):
            replies.read()
        replies.done()


def test_commands_are_packed_as_arrays_of_bulk_strings() -> None:
    packed = resp.pack([("SET", "k", b"v\r\n", "EX", 60), ("GET", "clé")])
    assert packed == (b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\nEX\r\n$2\r\n60\r\n"
                      b"*2\r\n$3\r\nGET\r\n$4\r\ncl\xc3\xa9\r\n")
    assert resp.pack([("SET", "k", bytearray(b"v"), 1.5)]).endswith(b"$1\r\nv\r\n$3\r\n1.5\r\n")
    with pytest.raises(TypeError):
        resp.pack([("SET", "k", True)])  # as redis-py refuses it: no guessing


def test_a_timeout_is_an_os_error_the_store_translates() -> None:
    """socket.timeout reaches ``RedisStore._failed`` as an OSError (NodeUnavailable there)."""

    class Silent:
        def recv(self, size: int) -> bytes:
            raise TimeoutError("timed out")

    with pytest.raises(OSError):
        resp.Replies(Silent(), parse_error).read()
