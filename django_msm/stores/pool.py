"""Connections: a lean pool of one node's client connections, shared by a process's threads.

Each command takes an idle connection (a new one if none is idle) and puts it back after:
``list.pop`` and ``list.append``, both atomic, instead of a lock and a context manager per
command (pymemcache's ``PooledClient`` spends about 3 µs of a 15 µs round trip on those). A
connection whose command raised is closed, never reused: its socket may hold half a reply.

``clear`` closes the idle connections only. One in use at that moment is closed by the thread
holding it when it comes back (a generation number tells), never under its feet: closing it
there made that thread's call fail with an error no one translates (a 500 under a node pause,
tests/test_locking_under_faults.py). A forked child forgets its parent's connections without
touching them: they are the parent's sockets too.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

C = TypeVar("C")
T = TypeVar("T")
_POOLS: weakref.WeakSet[Connections[Any]] = weakref.WeakSet()


class Connections(Generic[C]):
    """Idle connections of one node; ``failed`` raises the core's exception for an error."""

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], object],
        failed: Callable[[BaseException], None],
        reuse: Callable[[C], object] | None = None,
    ):
        self._connect = connect
        self._close = close
        self._failed = failed
        self._reuse = reuse  # readies an idle connection for another command
        self._idle: list[C] = []
        self._generation = 0
        _POOLS.add(self)

    def run(self, command: Callable[..., T], *args: Any) -> T:
        """Run ``command(connection, *args)`` on an idle connection."""
        generation, connection = self._generation, self._take()
        result = self._on(connection, command, *args)
        self._give_back(connection, generation)
        return result

    def start(self, send: Callable[[C], object], finish: Callable[[C], T]) -> Started[T]:
        """Run ``send(connection)`` now and return the call that runs ``finish(connection)``:
        a command whose reply is read later, so commands to several nodes travel at once
        (``NodeRegistry.call_many``). The connection stays out of the pool until then."""
        generation, connection = self._generation, self._take()
        self._on(connection, send)

        def reply() -> T:
            result = self._on(connection, finish)
            self._give_back(connection, generation)
            return result

        return Started(reply, lambda: self._close(connection))

    def _take(self) -> C:
        try:
            connection = self._idle.pop()
        except IndexError:
            return self._connect()
        if self._reuse is not None:
            self._reuse(connection)
        return connection

    def _on(self, connection: C, command: Callable[..., T], *args: Any) -> T:
        try:
            return command(connection, *args)
        except BaseException as exc:
            self._close(connection)
            self._failed(exc)
            raise

    def _give_back(self, connection: C, generation: int) -> None:
        if generation == self._generation:
            self._idle.append(connection)
        else:  # the pool was cleared while this connection was out: it goes too
            self._close(connection)

    def clear(self) -> None:
        """Close every idle connection; those in use are closed when they come back."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            self._close(connection)

    def _forget(self) -> None:
        self._generation += 1
        self._idle = []


class Started(Generic[T]):
    """A command sent whose reply is not read yet: calling it reads the reply; ``abandon``
    closes its connection instead, without a word to the server (for a reply nobody will
    read, e.g. when its request ended without the save it was sent for). One dropped unread
    is abandoned when it is collected: its socket is closed, never left to the collector."""

    __slots__ = ("_reply", "_abandon", "_open")

    def __init__(self, reply: Callable[[], T], abandon: Callable[[], object]):
        self._reply = reply
        self._abandon = abandon
        self._open = True

    def __call__(self) -> T:
        self._open = False
        return self._reply()

    def abandon(self) -> None:
        if self._open:
            self._open = False
            self._abandon()

    def __del__(self) -> None:
        self.abandon()  # a close, no I/O with the server


class Replies:
    """The replies of several commands sent on one connection at once, read by one call that
    returns them all (``Connections.start`` with a ``finish`` reading every reply). Each
    command's ``member`` answers its own reply; the first member asked reads them all, so
    their order of asking does not matter. If every member is dropped unread, the connection
    is closed as ``Started.abandon`` closes it (no I/O)."""

    __slots__ = ("_started", "_results", "_error", "_unasked")

    def __init__(self, started: Started[list[Any]], count: int):
        self._started = started
        self._results: list[Any] | None = None
        self._error: BaseException | None = None
        self._unasked = count

    def member(self, index: int) -> Started[Any]:
        return Started(lambda: self._answer(index), self._drop)

    def _answer(self, index: int) -> Any:
        self._unasked -= 1
        if self._results is None and self._error is None:
            try:
                self._results = self._started()
            except BaseException as exc:  # the connection failed: every member raises it
                self._error = exc
        if self._error is not None:
            raise self._error
        assert self._results is not None
        return self._results[index]

    def _drop(self) -> None:
        self._unasked -= 1
        if not self._unasked and self._results is None:
            self._started.abandon()


def _forget_after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget()


os.register_at_fork(after_in_child=_forget_after_fork)
