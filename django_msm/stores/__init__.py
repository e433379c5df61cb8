"""Store adapters, one per node kind, behind the interface of ``stores.base.Store``."""

from __future__ import annotations

from ..clock import Clock
from ..exceptions import ConfigurationError
from ..nodes import Node, NodeKind
from .base import Store


def create_store(node: Node, timeout: float, clock: Clock) -> Store:
    """Return the adapter for ``node``'s kind."""
    if node.kind is NodeKind.MEMCACHED:
        from .memcached import MemcachedStore

        return MemcachedStore(node, timeout, clock)
    msg = f"node {node.label!r}: {node.kind.value} nodes are not supported yet"
    raise ConfigurationError(msg)


__all__ = ["Store", "create_store"]
