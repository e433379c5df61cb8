"""Store adapters, one per node kind, behind the interface of ``stores.base.Store``."""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..core.nodes import Node, NodeKind
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
    # REDIS or CACHE: every kind is handled (mypy checks it: a new kind fails "missing return")
    from .redis import RedisStore

    return RedisStore(node, timeout, backup_timeout, client)


__all__ = ["Store", "create_store"]
