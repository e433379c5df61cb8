"""The small interface every store adapter implements: one adapter per node.

All expirations are relative seconds (``ttl``); ``ttl <= 0`` means "already expired". Adapters
translate them into what their server wants (memcached: absolute times above 30 days). Every
connection problem or timeout is raised as ``NodeUnavailable`` so that the core can quarantine
the node; a miss is ``None``/``False``, never an exception.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from typing import Any

from ..core.nodes import Node


def value_token(value: bytes) -> bytes:
    """A version token derived from the stored bytes (stores without a server-side version)."""
    return hashlib.sha1(value).hexdigest().encode()


def _raising(failure: Exception) -> Callable[[], Any]:
    """A started command's answer that raises ``failure`` when asked for."""

    def fail() -> Any:
        raise failure

    return fail


class Store(abc.ABC):
    """Byte-level access to one node.

    Version tokens: ``*_versioned`` calls return an opaque token that changes whenever the item is
    rewritten (not when it is touched), and ``version()`` returns the current one without moving
    the value. Sticky mode compares them to trust a process-local copy; ``cas`` writes only over
    a given one. The defaults derive the token from the bytes; adapters whose server keeps a
    version (memcached's CAS) override all four.
    """

    # True when a token is ``value_token`` of the stored bytes on every path (these defaults):
    # an item holding given bytes has a known token on any node, so the core can compare-and-set
    # a copy it expects without reading it first (``core.witness``). memcached's are CAS values.
    tokens_follow_bytes = True

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
        """Store unconditionally (backup copies, tombstones), within the backup timeout."""

    @abc.abstractmethod
    def touch(self, key: str, ttl: int) -> bool:
        """Give an existing key a new expiry without rewriting it; False if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the key; False if it was absent."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise NodeUnavailable unless the node answers."""

    def get_versioned(self, key: str) -> tuple[bytes | None, bytes | None]:
        """Return the stored bytes and their version token, or (None, None)."""
        value = self.get(key)
        return value, None if value is None else value_token(value)

    def version(self, key: str) -> bytes | None:
        """Return the item's version token; adapters override this to move no value."""
        return self.get_versioned(key)[1]

    def add_versioned(self, key: str, value: bytes, ttl: int) -> bytes | None:
        """``add`` returning the new version token, or None if the key exists."""
        return value_token(value) if self.add(key, value, ttl) else None

    def replace_versioned(self, key: str, value: bytes, ttl: int) -> bytes | None:
        """``replace`` returning the new version token, or None if the key is absent."""
        return value_token(value) if self.replace(key, value, ttl) else None

    def get_many_versioned(self, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """Bytes and version token of every present key among ``keys``, in as few round trips
        as the server allows (repair reads copies in batches); absent keys are left out."""
        found = {}
        for key in keys:
            value, token = self.get_versioned(key)
            if value is not None and token is not None:
                found[key] = (value, token)
        return found

    def add_many_versioned(self, items: list[tuple[str, bytes, int]]) -> list[bytes | None]:
        """``add_versioned`` of every (key, value, ttl), in as few round trips as the server
        allows (repair restores copies in batches); one answer per item, in order."""
        return [self.add_versioned(key, value, ttl) for key, value, ttl in items]

    @abc.abstractmethod
    def delete_if(self, key: str, token: bytes) -> bool:
        """Delete only if the item's version is still ``token``; False if it changed or is gone."""

    @abc.abstractmethod
    def cas(self, key: str, value: bytes, ttl: int, token: bytes) -> bytes | None:
        """Store only if the item still has version ``token`` (compare-and-set); return the new
        token, or None if the item was rewritten or is gone meanwhile.

        The one conditional write on a version, for values several processes update in turn
        (the per-user index, key rotation's re-sign, repair's restores): a lost race is retried
        on fresh data, never overwritten. ``ttl <= 0`` deletes the item if it still matches.
        """

    @abc.abstractmethod
    def lock(self, key: str, token: bytes, ttl: float) -> bytes | None:
        """Atomically create a lock item; return the proof ``unlock`` needs, None if held."""

    @abc.abstractmethod
    def unlock(self, key: str, proof: bytes) -> bool:
        """Delete the lock only if it is still the one ``proof`` came from (compare-and-delete)."""

    def start(self, method: str, *args: Any) -> Callable[[], Any]:
        """Send ``method(*args)`` without waiting for its reply; the returned call waits and
        answers (or raises) what ``getattr(self, method)(*args)`` would. Two commands to two
        nodes then cost one round trip, not two (``NodeRegistry.call_many``). Adapters split
        the commands they can; this default runs the command at once."""
        try:
            result = getattr(self, method)(*args)
        except Exception as exc:  # raised when the reply is asked for, as a split one would
            return _raising(exc)
        return lambda: result

    def start_many(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Callable[[], Any]]:
        """``start`` for several commands to this node at once (``NodeRegistry.send_many``):
        adapters that can send them on one connection in one write override it; this default
        starts each on its own. A command that fails to start answers with its error."""
        started: list[Callable[[], Any]] = []
        for method, args in commands:
            try:
                started.append(self.start(method, *args))
            except Exception as exc:  # this command's own failure, not its neighbours'
                started.append(_raising(exc))
        return started

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""
