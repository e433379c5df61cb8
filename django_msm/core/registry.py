"""NodeRegistry: the configured nodes, their stores, their health, placement and guarded calls.

That is all it is. What a process builds on top of it (away marks, the backup writer, sticky
copies, the copies service, the locker) is composed in ``core.cluster.Cluster``, and the
process-wide instance is owned by ``django_msm.runtime``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..clock import Clock, SystemClock
from ..exceptions import NodeUnavailable
from ..stores import Store, create_store
from .config import MsmConfig
from .dispatch import Call, Commands, Dispatcher, Pending
from .events import ClusterEvents
from .health import NodeHealth, NodeState
from .keys import SessionId
from .nodes import Node, NodeKind

T = TypeVar("T")


class NodeRegistry:
    """Node lookup, selection for new sessions, backup placement and guarded node calls.

    Usage::

        registry = NodeRegistry(config, stores={node: InMemoryStore(node) for node in nodes})
        node = registry.node_for(sid)
        data = registry.call(node, lambda store: store.get(key))   # NodeUnavailable if down
    """

    def __init__(
        self,
        config: MsmConfig,
        clock: Clock | None = None,
        stores: dict[Node, Store] | None = None,
        events: ClusterEvents | None = None,
    ):
        self.clock = clock or SystemClock()
        self.nodes = config.nodes
        self.stores = stores or {
            node: create_store(node, config.operation_timeout, config.backup_timeout, self.clock)
            for node in self.nodes
        }
        self.events = events = events or ClusterEvents()
        self.health = {
            node: NodeHealth(
                node.label, config.retry_timeout, config.retry_attempts, self.clock, events
            )
            for node in self.nodes
        }
        self._by_id = {node.id: node for node in self.nodes}
        # DRAINING_NODES take no new sessions or backups; RETIRED_NODES are ids no longer
        # configured: their keys are honoured (looked up on the configured nodes), never sent.
        self.draining = frozenset(node for node in self.nodes if node.id in config.draining)
        self.retired = {
            node_id: Node(node_id, NodeKind.MEMORY, "retired") for node_id in config.retired
        }
        for node in self.retired.values():
            self.health[node] = RetiredHealth(node.label, self.clock)
        # Told of every failed call (the cluster publishes an away mark); no-op by default.
        self.on_failure: Callable[[Node], None] = lambda node: None
        self.dispatcher = Dispatcher(self._start_many, self._recorded)

    def node_for(self, sid: SessionId) -> Node | None:
        """Return the node a key names (a retired one included), or None if the key does not
        fit this configuration: such a key never reaches a node."""
        return self._by_id.get(sid.node_id) or self.retired.get(sid.node_id or "")

    def is_retired(self, node: Node) -> bool:
        return self.retired.get(node.id or "") is node

    def new_session_nodes(self) -> list[Node]:
        """Available nodes for a new session: regular ones in random order, then failover ones."""
        # probe_due, not available(): the probe a quarantined node is owed is spent by call().
        open_nodes = [n for n in self.nodes if n not in self.draining]
        regular = [n for n in open_nodes if not n.failover and self.health[n].probe_due()]
        failover = [n for n in open_nodes if n.failover and self.health[n].probe_due()]
        random.shuffle(regular)
        random.shuffle(failover)
        return regular + failover

    def regular_available(self) -> bool:
        """True if some regular (non-failover) node is up, probing those that are due.

        Read-only traffic on sessions parked on a failover node sends nothing to the regular
        nodes, so without this probe they would never be seen back (at most one ping per
        RETRY_TIMEOUT per node and process).
        """
        for node in self.nodes:
            health = self.health[node]
            if node.failover:
                continue
            if health.state is not NodeState.UP and health.probe_due():
                try:
                    self.call(node, lambda store: store.ping())
                except NodeUnavailable:
                    continue
            if health.state is NodeState.UP:
                return True
        return False

    def backup_nodes(self, primary: Node) -> list[Node]:
        """Nodes after ``primary`` in configured order (failover nodes last), wrapping around.

        Every process computes the same list; writers take the first of ``backup_targets``
        that is not quarantined, readers walk all of it. The walk is bounded by the node count
        (msm #404). A retired node's backups may be on any configured node: all of them, in
        configured order (the node after it in the old order is one of them).
        """
        if self.is_retired(primary):
            return list(self.nodes)
        index = self.nodes.index(primary)
        return list(self.nodes[index + 1 :] + self.nodes[:index])

    def backup_targets(self, primary: Node) -> list[Node]:
        """Where backup copies are written: ``backup_nodes`` without the draining ones."""
        return [node for node in self.backup_nodes(primary) if node not in self.draining]

    def call(self, node: Node, operation: Callable[[Store], T]) -> T:
        """Run ``operation`` on ``node``'s store, skipping quarantined nodes, recording health."""
        self.dispatcher.flush()  # a deferred batch leaves before this thread waits on a node
        self._admit(node)
        return self._recorded(node, lambda: operation(self.stores[node]))

    def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run one store command on each of several nodes at once: every command is sent before
        any reply is read (``Store.start``), so a copy on each of two nodes costs one round trip.

        Each answer is the command's result, or the NodeUnavailable it raised (health recorded
        as ``call`` does). Any other error is raised once every reply has been read.
        """
        return self.send_many(calls).answers()

    def send_many(self, calls: Sequence[Call], defer: bool = False) -> Pending:
        """``call_many``'s first half: the commands go out now; ``answers()`` reads the replies
        (a caller with other round trips to make meanwhile overlaps them). ``defer``: they
        leave with this thread's next batch instead, in one write per node (``core.dispatch``).
        """
        return self.dispatcher.send(calls, defer)

    def _start_many(self, node: Node, commands: Commands) -> list[Any]:
        """``node``'s commands started at once; a failure to send answers for all of them."""
        try:
            self._admit(node)
            return self._recorded(node, lambda: self.stores[node].start_many(commands))
        except Exception as exc:  # answered in their places
            return [exc] * len(commands)

    def _admit(self, node: Node) -> None:
        if self.is_retired(node):
            raise NodeUnavailable(node.label, "retired", refused=True)
        if not self.health[node].available():
            raise NodeUnavailable(node.label, "quarantined")

    def _recorded(self, node: Node, operation: Callable[[], T]) -> T:
        health = self.health[node]
        try:
            result = operation()
        except NodeUnavailable as exc:
            health.record_failure(exc)
            self.on_failure(node)
            raise
        health.record_success()
        return result

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


class RetiredHealth(NodeHealth):
    """A retired node's health: gone for good, never probed, never back."""

    def __init__(self, label: str, clock: Clock):
        super().__init__(label, 1.0, 1, clock)
        self.state, self.failures, self.last_error = NodeState.QUARANTINED, 1, "retired"

    def available(self) -> bool:
        return False

    def probe_due(self) -> bool:
        return False
