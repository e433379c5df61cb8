"""The small interface every store adapter implements: one adapter per node.

All expirations are relative seconds (``ttl``); ``ttl <= 0`` means "already expired". Adapters
translate them into what their server wants (memcached: absolute times above 30 days). Every
connection problem or timeout is raised as ``NodeUnavailable`` so that the core can quarantine
the node; a miss is ``None``/``False``, never an exception.
"""

from __future__ import annotations

import abc

from ..nodes import Node


class Store(abc.ABC):
    """Byte-level access to one node."""

    def __init__(self, node: Node):
        self.node = node

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """Return the stored bytes, or None on a miss."""

    @abc.abstractmethod
    def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if absent; return False if the key exists (atomic create)."""

    @abc.abstractmethod
    def replace(self, key: str, value: bytes, ttl: int) -> bool:
        """Store only if present; return False if the key is absent (update, never resurrect)."""

    @abc.abstractmethod
    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store unconditionally."""

    @abc.abstractmethod
    def touch(self, key: str, ttl: int) -> bool:
        """Give an existing key a new expiry without rewriting it; False if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the key; False if it was absent."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise NodeUnavailable unless the node answers."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""
