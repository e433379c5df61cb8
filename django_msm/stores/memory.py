"""An in-memory store with the same interface, for unit tests of the core (public test helper).

``down = True`` makes every call raise NodeUnavailable, as a dead node would; ``calls`` records
the operations so tests can assert that nothing reached a node.
"""

from __future__ import annotations

import threading

from ..clock import Clock, SystemClock
from ..core.nodes import Node, NodeKind
from ..exceptions import NodeUnavailable
from .base import Store, value_token


class InMemoryStore(Store):
    """A dict with expiry, guarded by a lock because requests run on several threads."""

    def __init__(
        self, node: Node | None = None, clock: Clock | None = None, record_calls: bool = True
    ):
        super().__init__(node or Node("mem", NodeKind.MEMCACHED, "memory"))
        self.clock = clock or SystemClock()
        self.down = False
        self.record_calls = record_calls
        self.calls: list[tuple[str, str]] = []
        self._items: dict[str, tuple[bytes, float]] = {}
        self._writes = 0
        self._versions = 0
        self._lock = threading.Lock()

    def _enter(self, op: str, key: str) -> None:
        if self.record_calls:
            self.calls.append((op, key))
        if self.down:
            raise NodeUnavailable(self.node.label, "down (in-memory switch)", refused=True)

    def _live(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self.clock.monotonic():
            del self._items[key]
            return None
        return item[0]

    def _put(self, key: str, value: bytes, ttl: int) -> None:
        self._writes += 1
        if self._writes % 1024 == 0:  # keep a long-running dev server from hoarding dead items
            now = self.clock.monotonic()
            self._items = {k: item for k, item in self._items.items() if item[1] > now}
        if ttl <= 0:
            self._items.pop(key, None)
        else:
            self._items[key] = (value, self.clock.monotonic() + ttl)

    def get(self, key: str) -> bytes | None:
        self._enter("get", key)
        with self._lock:
            return self._live(key)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        self._enter("add", key)
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, value, ttl)
            return True

    def replace(self, key: str, value: bytes, ttl: int) -> bool:
        self._enter("replace", key)
        with self._lock:
            if self._live(key) is None:
                return False
            self._put(key, value, ttl)
            return True

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._enter("set", key)
        with self._lock:
            self._put(key, value, ttl)

    def touch(self, key: str, ttl: int) -> bool:
        self._enter("touch", key)
        with self._lock:
            value = self._live(key)
            if value is None:
                return False
            self._put(key, value, ttl)
            return True

    def delete(self, key: str) -> bool:
        self._enter("delete", key)
        with self._lock:
            found = self._live(key) is not None  # an expired item is absent, as on a node
            self._items.pop(key, None)
            return found

    def cas(self, key: str, value: bytes, ttl: int, token: bytes) -> bytes | None:
        self._enter("cas", key)
        with self._lock:
            current = self._live(key)
            if current is None or value_token(current) != token:
                return None
            self._put(key, value, ttl)
            return value_token(value)

    def delete_if(self, key: str, token: bytes) -> bool:
        self._enter("delete_if", key)
        with self._lock:
            current = self._live(key)
            if current is None or value_token(current) != token:
                return False
            del self._items[key]
            return True

    def lock(self, key: str, token: bytes, ttl: float) -> bytes | None:
        self._enter("lock", key)
        with self._lock:
            if self._live(key) is not None:
                return None
            self._versions += 1
            proof = b"%d" % self._versions
            self._items[key] = (proof, self.clock.monotonic() + ttl)
            return proof

    def unlock(self, key: str, proof: bytes) -> bool:
        self._enter("unlock", key)
        with self._lock:
            if self._live(key) != proof:
                return False
            del self._items[key]
            return True

    def ping(self) -> None:
        self._enter("ping", "")

    def clear(self) -> None:
        """Forget everything, as a node restarted empty would."""
        with self._lock:
            self._items.clear()
