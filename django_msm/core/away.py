"""AwayMarks: what every process knows about nodes that were away, shared through the nodes.

A deletion (logout, rotation, relocation) that cannot reach a node leaves tombstones on the
nodes it can reach. A process that saw the node go away knows to check that node's older copies
against their backup places when it comes back (``NodeHealth.suspect``). A process that did
not (another app server, or one started after the outage) needs to be told: so the process that
sees a node fail writes a small mark ``msm:away:<prefix><node>`` = "away at this time" to the
other nodes, and every process reads the marks when its registry is built and then at most every
``REFRESH_INTERVAL`` seconds, on the read path, with no thread. A copy written before a node's
latest away mark is verified before it is trusted.
"""

from __future__ import annotations

import logging
import threading

from ..clock import Clock
from ..exceptions import NodeUnavailable
from .keys import KeyLayout
from .nodes import Node
from .registry import NodeRegistry

logger = logging.getLogger(__name__)
REFRESH_INTERVAL = 5.0


class AwayMarks:
    """Publish and read the away marks of a registry's nodes."""

    def __init__(self, registry: NodeRegistry, keys: KeyLayout, clock: Clock, lifetime: int):
        self.registry = registry
        self.keys = keys
        self.clock = clock
        # A mark must outlive every copy it casts doubt on: the longest session, at least a day.
        self.ttl = max(int(lifetime), 86_400)
        self._next_refresh = 0.0  # due at once: a new process reads the marks first
        self._lock = threading.Lock()

    def key(self, node: Node) -> str:
        return self.keys.away(node.label)

    def publish(self, away: Node) -> None:
        """Tell the other nodes that ``away`` failed now (a failure path; no health updates)."""
        value = b"%.6f" % self.clock.time()
        ttl = self.ttl
        for node in self.registry.nodes:
            if node is away or not self.registry.health[node].probe_due():
                continue
            try:
                self.registry.stores[node].set(self.key(away), value, ttl)
            except NodeUnavailable:
                continue

    def refresh_if_due(self) -> None:
        """Read the marks if the interval has passed; one caller at a time does it."""
        now = self.clock.monotonic()
        if now < self._next_refresh or not self._lock.acquire(blocking=False):
            return
        try:
            self._next_refresh = now + REFRESH_INTERVAL
            self._read()
        finally:
            self._lock.release()

    def _read(self) -> None:
        for holder in self.registry.nodes:
            for node in self.registry.nodes:
                if node is not holder:
                    self._read_one(holder, node)

    def _read_one(self, holder: Node, node: Node) -> None:
        key = self.key(node)
        try:  # through the registry: a hung holder costs one timeout, then it is skipped
            value = self.registry.call(holder, lambda store: store.get(key))
        except NodeUnavailable:
            return
        if value is None:
            return
        try:
            self.registry.health[node].mark_away(float(value))
        except ValueError:
            logger.warning("unreadable away mark for node %s on %s", node.label, holder.label)
