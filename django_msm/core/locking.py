"""Session locking: no lost updates from concurrent requests of one user.

``SessionLocker`` takes a per-session lock key holding a random owner token before the session
is loaded, waiting against a monotonic deadline with jittered exponential backoff, and releases
it with a compare-and-delete, so a request that outlived ``LOCK_EXPIRATION`` can never delete a
lock another request holds by then (msm's unconditional DELETE could, msm.md §4).

Guarantees, per store:

* memcached: ``ms ... ME`` creates the lock only if absent and returns its CAS; ``md ... C<cas>``
  deletes it only if the CAS matches. Both are single atomic server operations. What memcached
  cannot give: durability (a restart or eviction drops the lock early).
* Redis: ``SET NX PX`` and a compare-and-delete script, with the same limit.

The lock lives on the session's home node and nowhere else, so every process contends at the
same place whatever it thinks of node health (issue 12: a lock on "the first available node"
was held twice while processes disagreed). When the home cannot be asked the request goes on
unlocked. Either way the lock only serializes normal traffic; what keeps a lapsed lock's save
from overwriting newer data is the fence at the key's witness (``core.witness``).

``ReadOnlyRequests`` is ``auto`` mode's memory: (method, resolved view) pairs seen to leave the
session unchanged run unlocked; a pair seen to modify is never trusted again.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..exceptions import LockTimeout, NodeUnavailable
from .config import LockTimeoutPolicy, MsmConfig
from .keys import KeyTag, SessionId
from .nodes import Node
from .registry import NodeRegistry
from .stats import statistics
from .throttle import LogThrottle

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.005
MAX_BACKOFF = 0.1


@dataclass(frozen=True)
class SessionLock:
    """A held lock: where it lives and the proof that releases it. ``key`` holds the session
    key: log ``tag`` instead (``MsmConfig.tag``)."""

    node: Node
    key: str
    proof: bytes
    tag: KeyTag | str = ""


class SessionLocker:
    """Acquire and release session locks through the registry (injectable sleep for tests)."""

    def __init__(
        self,
        registry: NodeRegistry,
        config: MsmConfig,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        throttle: LogThrottle | None = None,
    ):
        self.registry = registry
        self.config = config
        self.clock = clock
        self.keys = config.keys
        self.sleep = sleep
        self.throttle = throttle or LogThrottle(clock)

    def acquire(self, sid: SessionId, primary: Node) -> SessionLock | None:
        """Return the lock, or None when it could not be had within the wait budget.

        Raises NodeUnavailable when the home node cannot be asked: there is no other place.
        """
        key = self.keys.lock(sid)
        token = secrets.token_hex(16).encode()
        expiration = self.config.lock_expiration
        started = self.clock.monotonic()
        deadline = started + self.config.lock_wait
        delay = FIRST_BACKOFF
        try:
            while True:
                proof = self.registry.call(primary, lambda s: s.lock(key, token, expiration))
                if proof is not None:
                    statistics.incr("locks_acquired")
                    return SessionLock(primary, key, proof, self.config.tag(sid))
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    statistics.incr("lock_timeouts")
                    return None
                self.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
                delay = min(delay * 2, MAX_BACKOFF)
        finally:
            statistics.observe("lock_wait", self.clock.monotonic() - started)

    def acquire_or_raise(self, sid: SessionId, primary: Node) -> SessionLock | None:
        """``acquire``, then apply LOCK_TIMEOUT_POLICY: raise LockTimeout ("fail", the
        middleware answers 503) or warn and go on unlocked ("proceed", msm's behaviour).

        A home node that cannot be asked means no lock, at once and without a wait: the
        request's save is fenced at the witness instead.
        """
        started = self.clock.monotonic()
        try:
            lock = self.acquire(sid, primary)
        except NodeUnavailable:
            statistics.incr("locks_home_unreachable")
            return None
        if lock is not None:
            return lock
        waited = self.clock.monotonic() - started
        tag = self.config.tag(sid)
        if self.config.lock_timeout_policy is LockTimeoutPolicy.FAIL:
            raise LockTimeout(str(tag), primary.label, waited)
        self.throttle.session(logger, logging.WARNING, tag, primary.label,
                              "used without its lock after %.2f s", waited)
        return None

    def release(self, lock: SessionLock) -> None:
        """Compare-and-delete; a lock that expired meanwhile is left to its new owner."""
        try:
            released = self.registry.call(lock.node, lambda s: s.unlock(lock.key, lock.proof))
        except NodeUnavailable:
            self.throttle.session(logger, logging.WARNING, lock.tag, lock.node.label,
                                  "left locked (node unavailable); the lock expires by itself")
            return
        if not released:
            statistics.incr("locks_expired_before_release")
            self.throttle.session(logger, logging.WARNING, lock.tag, lock.node.label,
                                  "had its lock expire before the request ended")


class ReadOnlyRequests:
    """``auto`` mode: bounded memory of request kinds that never modify the session."""

    def __init__(self, max_read_only: int = 1000, max_modifying: int = 50_000):
        self._read_only: OrderedDict[str, None] = OrderedDict()
        self._modifying: OrderedDict[str, None] = OrderedDict()
        self._limits = (max_read_only, max_modifying)
        self._lock = threading.Lock()

    def is_read_only(self, kind: str) -> bool:
        with self._lock:
            return kind in self._read_only

    def observe(self, kind: str, modified: bool) -> None:
        """Learn from a finished request; one modification blacklists the kind for good."""
        with self._lock:
            if modified:
                self._read_only.pop(kind, None)
                _remember(self._modifying, kind, self._limits[1])
            elif kind not in self._modifying:
                _remember(self._read_only, kind, self._limits[0])


def _remember(entries: OrderedDict[str, None], kind: str, limit: int) -> None:
    entries[kind] = None
    entries.move_to_end(kind)
    while len(entries) > limit:
        entries.popitem(last=False)
