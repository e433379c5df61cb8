"""Commands sent now, replies read later: ``NodeRegistry.send_many`` and its ``Pending``.

Every command of a ``send_many`` leaves before any reply is read, so a copy on each of two
nodes costs one round trip, not two. Commands to the same node leave together too: one write
on one connection (``Store.start_many``), as memcached and Redis both answer a connection's
commands in order. That needs them in one batch, so a caller may *defer* a batch: its commands
wait, on this thread, for the next batch sent, and leave with it. A login's reads of its
user's index (``UserIndex.prefetch``) wait so for the session's own write, and on each node the
two then cost one write and one read of the socket instead of two each.

A deferred batch never waits long: the next command this thread sends anyhow (``flush``, from
``NodeRegistry.call`` too) takes it along, and asking for its answers sends it. One dropped
unsent is never sent at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import MSMError, NodeUnavailable
from .nodes import Node

Call = tuple[Node, str, tuple[Any, ...]]  # a node, a Store method's name and its arguments
Commands = list[tuple[str, tuple[Any, ...]]]  # one node's: a Store method's name, its arguments
# A node's commands started at once (their replies, or the error each answers with), and a
# reply read with the node's health recorded: ``NodeRegistry``'s guarded calls.
Start = Callable[[Node, Commands], list[Any]]
Recorded = Callable[[Node, Callable[[], Any]], Any]
_UNSENT = object()


class Dispatcher:
    """Sends ``Pending`` batches for one registry, grouped per node."""

    def __init__(self, start: Start, recorded: Recorded):
        self._start = start
        self.recorded = recorded
        # Per thread, not global: deferred batches belong to the request that made them, and
        # each thread sends its own (no lock: nothing here is shared between threads).
        self._local = threading.local()

    def send(self, calls: Sequence[Call], defer: bool = False) -> Pending:
        pending = Pending(self, calls)
        self._deferred().append(pending)
        if not defer:
            self.flush()
        return pending

    def _deferred(self) -> list[Pending]:
        deferred: list[Pending] | None = getattr(self._local, "deferred", None)
        if deferred is None:
            deferred = self._local.deferred = []
        return deferred

    def flush(self) -> None:
        """Send this thread's deferred batches, if any: each node's commands in one write."""
        deferred: list[Pending] | None = getattr(self._local, "deferred", None)
        if deferred:
            self._local.deferred = []
            self.dispatch(deferred)

    def dispatch(self, batches: list[Pending]) -> None:
        by_node: dict[Node, list[tuple[Pending, int]]] = {}
        for pending in batches:
            if pending.sent is None:  # not sent yet, nor dropped
                pending.sent = [_UNSENT] * len(pending.calls)
                for index, (node, _, _) in enumerate(pending.calls):
                    by_node.setdefault(node, []).append((pending, index))
        for node, places in by_node.items():
            commands = [pending.calls[index][1:] for pending, index in places]
            replies = self._start(node, commands)
            for (pending, index), reply in zip(places, replies, strict=True):
                pending.sent[index] = reply  # type: ignore[index]


class Pending:
    """Commands sent (or deferred) by ``NodeRegistry.send_many`` whose replies are read once,
    by ``answers`` (each the command's result or its NodeUnavailable; any other error raised
    after all were read)."""

    def __init__(self, dispatcher: Dispatcher, calls: Sequence[Call]):
        self._dispatcher = dispatcher
        self.calls = calls
        self.sent: list[Any] | None = None  # the started replies, once sent
        self._answers: list[Any] | None = None

    def abandon(self) -> None:
        """Close the connections of replies never read (no I/O: a finalizer may call this).
        A batch still deferred is simply never sent."""
        if self._answers is None:
            self._answers = [NodeUnavailable(node.label, "abandoned") for node, _, _ in self.calls]
            for reply in self.sent or ():
                getattr(reply, "abandon", lambda: None)()
            self.sent = self.sent or []

    def settle(self) -> None:
        """Read the replies if nobody did (their connections go back to their pools), for a
        caller that no longer needs them: a failure is recorded in the node's health already,
        so nothing is raised. A batch still deferred is dropped unsent."""
        if self.sent is None:
            self.abandon()
            return
        try:
            self.answers()
        except MSMError:
            pass

    def answers(self) -> list[Any]:
        if self._answers is None:
            if self.sent is None:  # deferred: it leaves now, with this thread's others
                self._dispatcher.flush()
                self._dispatcher.dispatch([self])  # deferred on another thread
            assert self.sent is not None
            self._answers = [self._read(node, reply)
                             for (node, _, _), reply in zip(self.calls, self.sent, strict=True)]
        error = next((a for a in self._answers if isinstance(a, Exception)
                      and not isinstance(a, NodeUnavailable)), None)
        if error is not None:
            raise error
        return self._answers

    def _read(self, node: Node, reply: Any) -> Any:
        if isinstance(reply, Exception):
            return reply
        try:
            return self._dispatcher.recorded(node, reply)
        except Exception as exc:  # NodeUnavailable, or raised after the others are read
            return exc
