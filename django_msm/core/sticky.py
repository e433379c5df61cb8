"""LocalSessions: sticky mode's process-local primary copies, a bounded LRU.

Bounded twice, by entries and by payload bytes, so a flood of distinct sessions cannot grow a
worker without limit. Each entry keeps the version token of the node copy it matches; a request
trusts the entry only after the node confirms the token (``Store.version``), because the other
worker processes of the same host may have changed the session meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import NodeUnavailable
from .envelope import Copy
from .hostversions import HostVersions


@dataclass(frozen=True)
class LocalEntry:
    token: bytes | None  # None: written by this process, node write still in flight
    copy: Copy


class LocalSessions:
    """A thread-safe LRU of session copies keyed by session key."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, LocalEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> LocalEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: LocalEntry) -> None:
        size = len(entry.copy.payload)
        with self._lock:
            self._discard(key)
            if size > self.max_bytes:
                return
            self._entries[key] = entry
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._discard(next(iter(self._entries)))

    def confirm(self, key: str, copy: Copy, token: bytes | None) -> None:
        """Record the node's token for the copy this process wrote, if it is still current."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.copy is copy:
                self._entries[key] = LocalEntry(token, copy)

    def pop(self, key: str) -> None:
        with self._lock:
            self._discard(key)

    def _discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.copy.payload)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes


class StickyCopies:
    """Sticky mode's whole view: this process's copies and, with a route, the host's table.

    ``ask_node`` is the payload-free version check (``Store.version``); it is only called when
    the host's table cannot vouch for the local copy.
    """

    def __init__(self, local: LocalSessions, host: HostVersions | None):
        self.local = local
        self.host = host

    def current(self, key: str, ask_node: Callable[[], bytes | None]) -> LocalEntry | None:
        """The local copy of ``key`` if it is the current version, else None (load it)."""
        entry = self.local.get(key)
        if entry is None or entry.token is None:  # None: our own write is still in flight
            return entry
        if self.host is not None and self.host.get(key) == entry.token:
            return entry
        try:
            current = ask_node()
        except NodeUnavailable:
            return None  # the full load falls back to the backup copy
        if current != entry.token:
            self.local.pop(key)
            return None
        if self.host is not None:
            self.host.put(key, current)
        return entry

    def remember(self, key: str, copy: Copy, token: bytes | None) -> None:
        self.local.put(key, LocalEntry(token, copy))
        if self.host is not None:
            self.host.put(key, token)

    def confirm(self, key: str, copy: Copy, token: bytes | None) -> None:
        """An asynchronous write of ``copy`` landed with version ``token``."""
        self.local.confirm(key, copy, token)
        if self.host is not None:
            self.host.put(key, token)

    def forget(self, key: str) -> None:
        self.local.pop(key)
        if self.host is not None:
            self.host.forget(key)
