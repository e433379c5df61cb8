"""The Redis protocol (RESP) for the few commands a session store sends, on a plain socket.

redis-py's ``Connection.send_command`` and ``read_response`` cost about 15 µs of CPU around a
1 KB ``GET`` on a VM where a raw round trip takes 66 µs (its generic packer, a socket buffer
behind a ``BytesIO``, timeout juggling, push-message and health-check hooks): as much as the
whole engine's own work on a read. The commands here are the store's: ``GET``, ``SET``,
``DEL``, ``EXISTS``, ``EXPIRE``, ``MGET``, ``EVALSHA``/``EVAL`` and ``PING``. Their replies are
simple strings, errors, integers, bulk strings, nulls and arrays of those (RESP2, and the RESP3
null), so the reader is short. redis-py still opens, authenticates and closes the connections
(``stores.redis_wire``); its error classes name what a server's error reply means.

A reader reads exactly the replies of the commands sent: one ``recv`` may carry several of a
pipeline's, so they are cut from one buffer, and bytes left over after the last are a protocol
error (the connection is closed, never reused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse

_CHUNK = 64 * 1024


def pack(commands: Sequence[tuple[object, ...]]) -> bytes:
    """Commands as one RESP write: arrays of bulk strings (str as UTF-8, numbers as text)."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = _bulk(arg)
            parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def _bulk(arg: object) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, (str, int, float)) and not isinstance(arg, bool):
        return str(arg).encode()
    raise TypeError(f"a Redis argument must be bytes, str or a number, not {type(arg).__name__}")


class Replies:
    """Reads replies off ``sock`` in order; an error reply is returned as the exception
    ``error`` makes of its text (the caller decides whether to raise it)."""

    def __init__(self, sock: Any, error: Callable[[str], Exception]):
        self._sock = sock
        self._error = error
        self._buf = b""
        self._at = 0

    def read(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = _number(rest)
            return None if size < 0 else self._exactly(size)
        if kind == b"+":
            return rest
        if kind == b":":
            return _number(rest)
        if kind == b"-":
            return self._error(rest.decode("utf-8", errors="replace"))
        if kind == b"_":
            return None
        if kind == b"*":
            count = _number(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise InvalidResponse(f"unexpected Redis reply type {kind!r}")

    def done(self) -> None:
        """Every reply asked for was read: nothing more may wait in the buffer."""
        if self._at != len(self._buf):
            raise InvalidResponse("more Redis replies than commands")

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._at)
            if end >= 0:
                line, self._at = self._buf[self._at : end], end + 2
                return line
            if len(self._buf) - self._at > _CHUNK:
                raise InvalidResponse("Redis reply line without an end")
            self._buf = self._buf[self._at :] + self._recv(_CHUNK)
            self._at = 0

    def _exactly(self, size: int) -> bytes:
        end = self._at + size
        while len(self._buf) < end + 2:
            self._buf += self._recv(end + 2 - len(self._buf))
        if self._buf[end : end + 2] != b"\r\n":
            raise InvalidResponse("Redis bulk reply longer than announced")
        data, self._at = self._buf[self._at : end], end + 2
        return data

    def _recv(self, wanted: int) -> bytes:
        chunk = self._sock.recv(max(_CHUNK, wanted))
        if not chunk:
            raise RedisConnectionError("Connection closed by server.")
        return bytes(chunk)


def _number(text: bytes) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidResponse(f"unexpected Redis reply {text[:40]!r}") from exc
