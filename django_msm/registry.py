"""NodeRegistry: the configured nodes, their store adapters and their health, per process.

The registry is process-global on purpose: connection pools and the health view must be shared
by all requests of a process (a per-request or per-thread view would re-learn every failure,
which is what makes Django's per-thread cache clients disagree about dead nodes). It is built
lazily under a lock and dropped by ``reset_registry()`` when the settings change.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import TypeVar

from .away import AwayMarks
from .clock import Clock, SystemClock
from .conf import MsmConfig, get_config
from .exceptions import NodeUnavailable
from .failover import NodeHealth, NodeState
from .hostversions import HostVersions
from .local import LocalSessions, StickyCopies
from .locking import ReadOnlyRequests
from .nodes import Node
from .session_id import SessionId
from .stats import statistics
from .stores import Store, create_store
from .writer import BackupWriter

T = TypeVar("T")


class NodeRegistry:
    """Node lookup, selection for new sessions, backup placement and guarded node calls."""

    def __init__(
        self,
        config: MsmConfig,
        clock: Clock | None = None,
        stores: dict[Node, Store] | None = None,
    ):
        self.config = config
        self.clock = clock or SystemClock()
        statistics.enabled = config.enable_statistics
        self.nodes = config.nodes
        self.stores = stores or {
            node: create_store(node, config.operation_timeout, config.backup_timeout, self.clock)
            for node in self.nodes
        }
        self.health = {
            node: NodeHealth(node.label, config.retry_timeout, config.retry_attempts, self.clock)
            for node in self.nodes
        }
        self._by_id = {node.id: node for node in self.nodes}
        # SESSION_BACKUP_ASYNC's worker pool (None for synchronous writes).
        self.writer = (
            BackupWriter(config.backup_threads, config.backup_queue_size)
            if config.backup_async
            else None
        )
        # What other processes saw of nodes that were away (shared through the nodes).
        self.away = AwayMarks(self)
        # LOCKING_MODE=auto: request kinds seen to leave the session unchanged.
        self.read_only = ReadOnlyRequests()
        # Sticky mode: this process's primary copies (bounded LRU) and, with a route, the
        # versions shared by the host's workers (None in non-sticky mode).
        self.local: LocalSessions | None = None
        self.sticky: StickyCopies | None = None
        if config.sticky:
            self.local = LocalSessions(config.local_cache_entries, config.local_cache_bytes)
            self.sticky = StickyCopies(self.local, _host_versions(config, self.clock))

    def node_for(self, sid: SessionId) -> Node | None:
        """Return the node a key names, or None if the key does not fit this configuration."""
        return self._by_id.get(sid.node_id)

    def new_session_nodes(self) -> list[Node]:
        """Available nodes for a new session: regular ones in random order, then failover ones."""
        # probe_due, not available(): the probe a quarantined node is owed is spent by call().
        regular = [n for n in self.nodes if not n.failover and self.health[n].probe_due()]
        failover = [n for n in self.nodes if n.failover and self.health[n].probe_due()]
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

        Every process computes the same list; writers take the first node that is not
        quarantined, readers walk it in order. The walk is bounded by the node count (msm #404).
        """
        index = self.nodes.index(primary)
        return list(self.nodes[index + 1 :] + self.nodes[:index])

    def call(self, node: Node, operation: Callable[[Store], T]) -> T:
        """Run ``operation`` on ``node``'s store, skipping quarantined nodes, recording health."""
        health = self.health[node]
        if not health.available():
            raise NodeUnavailable(node.label, "quarantined")
        try:
            result = operation(self.stores[node])
        except NodeUnavailable as exc:
            health.record_failure(exc)
            self.away.publish(node)
            raise
        health.record_success()
        return result

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
        if self.sticky is not None and self.sticky.host is not None:
            self.sticky.host.close()
        for store in self.stores.values():
            store.close()


def _host_versions(config: MsmConfig, clock: Clock) -> HostVersions | None:
    if not (config.sticky and config.route and config.host_version_slots):
        return None
    nodes = ",".join(node.address for node in config.nodes)
    secret = config.signing_keys[0].hex()[:16]
    identity = f"{secret}|{config.storage_prefix}|{config.route}|{nodes}"
    path = HostVersions.path_for(identity)
    return HostVersions(path, config.host_version_slots, config.host_version_trust, clock)


_registry: NodeRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> NodeRegistry:
    """Return the process's registry, building it from the settings on first use."""
    global _registry
    registry = _registry
    if registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = NodeRegistry(get_config())
            registry = _registry
    return registry


def reset_registry() -> None:
    """Drop the registry (settings changed, or a test wants a fresh health view)."""
    global _registry
    with _registry_lock:
        if _registry is not None:
            _registry.close()
        _registry = None
