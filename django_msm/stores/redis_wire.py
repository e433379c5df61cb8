"""The wire side of our own Redis connections: commands on one redis-py ``Connection``.

``stores.redis`` holds these connections in a lean pool (``stores.pool.Connections``) and runs
its commands through the helpers here: one command, a pipeline, the replies of split commands
(``Store.start``), and the check of an idle connection before it is reused. redis-py opens,
authenticates and closes the connection; the commands and replies go over its socket in
``stores.resp``. A redis-py whose connections lack the two internals used (``_sock``,
``_parser``) gets its own ``send_packed_command`` and ``read_response`` instead.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from . import resp
from .redis_scripts import CAS_SCRIPT

if TYPE_CHECKING:
    from redis.connection import ConnectionInterface as Connection

Split = tuple[tuple[Any, ...], Callable[[Any], Any]]  # a command sent, and its reply's parse


def send(conn: Connection, commands: Sequence[tuple[object, ...]]) -> None:
    """Write ``commands`` at once (``stores.resp``), connecting first if needed."""
    sock = _socket(conn)
    if sock is None:  # a redis-py without the internals relied on: its own way
        conn.send_packed_command(conn.pack_commands(commands))
    else:
        sock.sendall(resp.pack(commands))


def read(conn: Connection, count: int) -> list[Any]:
    """The replies of the ``count`` commands last sent, in order, an error reply in its place
    as the exception redis-py would raise for it."""
    parser = getattr(conn, "_parser", None)
    if getattr(conn, "_sock", None) is None or parser is None:
        return [_read_one(conn) for _ in range(count)]
    replies = resp.Replies(conn._sock, parser.parse_error)  # type: ignore[attr-defined]
    answers = [replies.read() for _ in range(count)]
    replies.done()
    return answers


def command(conn: Connection, *args: object) -> Any:
    """Send one command on ``conn`` and read its raw reply (an error reply raises)."""
    send(conn, [args])
    return _raised(read(conn, 1)[0])


def pipelined(conn: Connection, commands: Sequence[tuple[object, ...]]) -> list[Any]:
    """Every command sent at once, then one raw reply read per command (an error raises)."""
    send(conn, commands)
    return [_raised(reply) for reply in read(conn, len(commands))]


def answers(conn: Connection, sent: Sequence[Split]) -> list[Any]:
    """Read one reply per command of ``sent`` (sent at once) and parse it. A compare-and-set
    script the server lost (a restart, SCRIPT FLUSH) is sent again in full, after every
    reply of the batch is read: its reply must not be taken for theirs."""
    return [
        parse(command(conn, "EVAL", CAS_SCRIPT, *sent_command[2:])
              if isinstance(reply, NoScriptError) else _raised(reply))
        for (sent_command, parse), reply in zip(sent, read(conn, len(sent)), strict=True)
    ]


def _socket(conn: Connection) -> Any:
    if not hasattr(conn, "_sock"):
        return None
    if conn._sock is None:
        conn.connect()
    return conn._sock


def _read_one(conn: Connection) -> Any:
    try:
        return conn.read_response()
    except ResponseError as exc:  # in its place, as ``resp.Replies`` answers an error reply
        return exc


def _raised(reply: Any) -> Any:
    if isinstance(reply, ResponseError):
        raise reply
    return reply


def freshen(conn: Connection) -> None:
    """An idle connection with bytes waiting, or closed, was dropped by the server (a restart)
    or left astray: reconnect it at its next command, as redis-py's pool does.

    One ``poll`` with no wait answers that: readable means bytes are waiting or the server
    closed the socket. redis-py's ``can_read`` makes the socket non-blocking and back around a
    ``recv`` that raises when nothing waits: four system calls and an exception where one poll
    does, on every command (about 9 µs on a VM where system calls are dear). Our commands read
    every reply they ask for (a connection whose command raised is closed), so no reply waits
    in redis-py's own buffer between two commands. TLS sockets keep ``can_read``: decrypted
    bytes may wait in the TLS layer, where a poll does not see them.
    """
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return  # not connected: it connects at its next command
    try:
        if isinstance(sock, ssl.SSLSocket):
            stale = conn.can_read()
        else:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            stale = bool(poller.poll(0))
    except (RedisError, OSError, ValueError):  # ValueError: a socket closed meanwhile
        stale = True
    if stale:
        conn.disconnect()


def disconnect(conn: Connection) -> None:
    conn.disconnect()
