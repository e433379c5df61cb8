"""Store adapters, one per node kind, behind the interface of ``stores.base.Store``."""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..core.nodes import Node, NodeKind
from ..exceptions import ConfigurationError
from .base import Store


def create_store(
    node: Node,
    timeout: float,
    backup_timeout: float,
    clock: Clock,
    client: Any = None,
) -> Store:
    """Return the adapter for ``node``'s kind.

    ``timeout`` bounds every operation; ``backup_timeout`` bounds unconditional writes (backup
    copies, tombstones): how long a synchronous save waits for its second copy. ``client``: a
    ready client to use (a ``cache:ALIAS`` node's, resolved by ``django_msm.runtime``).
    """
    if node.kind is NodeKind.MEMORY:
        from .memory import InMemoryStore

        return InMemoryStore(node, clock, record_calls=False)
    if node.kind is NodeKind.MEMCACHED:
        from .memcached import MemcachedStore

        return MemcachedStore(node, timeout, clock, backup_timeout=backup_timeout)
    if node.kind in (NodeKind.REDIS, NodeKind.CACHE):
        from .redis import RedisStore

        return RedisStore(node, timeout, backup_timeout, client)
    msg = f"node {node.label!r}: {node.kind.value} nodes are not supported yet"
    raise ConfigurationError(msg)


__all__ = ["Store", "create_store"]
