"""The memcached reads every request makes, as meta commands on a pooled client's socket.

pymemcache spends about 4 µs of CPU around a 1 KB ``get`` (key checks, command assembly, a
reader built for many keys and every reply form): a third of a loopback round trip, on the
read that every request makes. The commands here are meta commands (memcached >= 1.6, as the
rest of the store needs), each answered by one reply line and at most one value, so one short
reader (``replies``) cuts them, one or several sent at once:

    mg <key> v      ->  VA <size>\\r\\n<value>\\r\\n   or  EN\\r\\n
    mg <key> v c    ->  VA <size> c<cas>\\r\\n<value>\\r\\n
    mg <key> c      ->  HD c<cas>\\r\\n                or  EN\\r\\n
    ms <key> ... c  ->  HD c<cas>\\r\\n   or  NS / EX / NF\\r\\n

They run on the socket of a pymemcache ``Client`` between its own commands: pymemcache keeps
no read buffer from one command to the next, and these read exactly their own reply, so the
two never see each other's bytes. Errors are pymemcache's exceptions, so the store translates
them as it does the others; the caller closes a client whose command raised.
"""

from __future__ import annotations

from typing import Any

from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheIllegalInputError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownError,
)

_CHUNK = 64 * 1024
_MAX_KEY = 250
_FORBIDDEN = b" \t\n\r\x0b\x0c\x00"  # what pymemcache refuses: whitespace and NUL


def get(client: Client, key: str) -> bytes | None:
    """The stored value, or None on a miss."""
    return _value(client, b"mg %s v\r\n" % _key(key))[0]


def get_versioned(client: Client, key: str) -> tuple[bytes | None, bytes | None]:
    """The stored value and its CAS, or (None, None) on a miss."""
    return _value(client, get_versioned_command(key))


def get_versioned_command(key: str) -> bytes:
    """The command of ``get_versioned``, for a caller that sends it and reads the reply later
    (``replies``, then ``versioned``)."""
    return b"mg %s v c\r\n" % _key(key)


def version(client: Client, key: str) -> bytes | None:
    """The item's CAS without its value, or None on a miss."""
    header, _ = request(client, b"mg %s c\r\n" % _key(key))
    return None if header == b"EN" else _cas(header, b"HD")


def _key(key: str) -> bytes:
    """The key as pymemcache would send it, refused where pymemcache would refuse it (the
    message leaves the key out: it may be a session key)."""
    try:
        data = key.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MemcacheIllegalInputError("key is not ASCII") from exc
    if len(data) > _MAX_KEY or len(data.translate(None, _FORBIDDEN)) != len(data):
        raise MemcacheIllegalInputError("key too long or with whitespace or NUL")
    return data


def _value(client: Client, command: bytes) -> tuple[bytes | None, bytes | None]:
    return versioned(*request(client, command))


def request(client: Client, command: bytes) -> tuple[bytes, bytes | None]:
    """Send one meta command; return its reply line and value (``replies``)."""
    send(client, command)
    return replies(client, 1)[0]


def send(client: Client, command: bytes) -> None:
    """Send ``command`` on the client's socket (connecting it first if needed)."""
    if client.sock is None:
        client._connect()  # pymemcache's own connect: its timeouts and socket options
    client.sock.sendall(command)


def _cas(header: bytes, status: bytes) -> bytes:
    for flag in header.split()[1:] if status == b"HD" else header.split()[2:]:
        if flag.startswith(b"c"):
            return flag[1:]
    raise MemcacheUnknownError(f"meta reply without CAS: {header[:40]!r}")


def replies(client: Client, count: int) -> list[tuple[bytes, bytes | None]]:
    """Read the replies of ``count`` meta commands sent at once on one connection: each its
    reply line and, for ``VA``, its value (None otherwise). memcached answers in order, and one
    ``recv`` may hold several replies, so they are cut from one buffer."""
    sock, buf, at = client.sock, b"", 0
    answers: list[tuple[bytes, bytes | None]] = []
    if sock is None:
        raise MemcacheUnexpectedCloseError()
    while len(answers) < count:
        end = buf.find(b"\r\n", at)
        if end < 0:
            if len(buf) - at > _CHUNK:
                raise MemcacheUnknownError("meta reply line without an end")
            buf = buf[at:] + _more(sock, _CHUNK)
            at = 0
            continue
        header, at = buf[at:end], end + 2
        _raise_for_error(header)
        value = None
        if header.startswith(b"VA "):
            size = _size(header)
            while len(buf) < at + size + 2:
                buf += _more(sock, at + size + 2 - len(buf))
            if buf[at + size : at + size + 2] != b"\r\n":
                raise MemcacheUnknownError("meta reply longer than announced")
            value, at = buf[at : at + size], at + size + 2
        answers.append((header, value))
    if at != len(buf):
        raise MemcacheUnknownError("more meta replies than commands")
    return answers


def versioned(header: bytes, value: bytes | None) -> tuple[bytes | None, bytes | None]:
    """An ``mg ... v [c]`` reply cut by ``replies``: the value and its CAS (if asked), or
    (None, None) on a miss."""
    if header == b"EN":
        return None, None
    if value is None:
        raise MemcacheUnknownError(f"unexpected meta reply {header[:40]!r}")
    return value, _cas(header, b"VA") if b" c" in header else None


def _size(header: bytes) -> int:
    try:
        return int(header.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise MemcacheUnknownError(f"unexpected meta reply {header[:40]!r}") from exc


def _more(sock: Any, wanted: int) -> bytes:
    chunk = sock.recv(max(_CHUNK, wanted))
    if not chunk:
        raise MemcacheUnexpectedCloseError()
    return bytes(chunk)


def _raise_for_error(header: bytes) -> None:
    if header.startswith(b"SERVER_ERROR"):
        raise MemcacheServerError(header[13:])
    if header.startswith(b"CLIENT_ERROR"):
        raise MemcacheClientError(header[13:])
