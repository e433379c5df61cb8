"""Per-kind node inspection for ``msm_status``: a fresh probe and an exact count of copies.

Every node kind provides two functions, looked up by ``inspector_for(node)``:

* ``probe(store, timeout)`` → ``Probe``: is the node answering right now, round-trip latency
  (median of ``PINGS`` pings), server version, uptime, memory, items, evictions. Never raises.
* ``count(store, prefix, timeout)`` → ``Counts``: how many primary and backup session copies the
  node holds, by the node id their key names. Raises ``CountError``.
* ``keys(store, prefix, timeout, cursor)`` → batches of the node's primary and backup storage
  keys (``KeyBatch``), streamed with flat memory, for repair. ``cursor`` resumes a walk where a
  batch's ``cursor`` said (Redis ``SCAN``); None starts from the beginning. Raises ``CountError``.

Kinds without an inspector of their own are probed with ``Store.ping()`` and not counted.

Key forms (``core.keys.KeyLayout``): a primary copy is ``<prefix><session key>``, a backup copy
``bak:<prefix><session key>``. A tombstone (a deleted or relocated session) has the same key
form, but its value is exactly ``TOMBSTONE_SIZE`` bytes; a session copy always has a payload, so
it is larger, and tombstones are left out of the counts.
"""

from __future__ import annotations

import statistics as pystats
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ...core.envelope import Copy, Kind, pack
from ...core.nodes import Node, NodeKind
from ...exceptions import NodeUnavailable
from ...stores import Store

TOMBSTONE_SIZE = len(pack(Copy(Kind.TOMBSTONE, 0, 0.0, 0.0), b"size", 1))
PINGS = 3


class CountError(Exception):
    """Raised when a node's copies cannot be counted (node gone, command refused)."""


@dataclass(frozen=True)
class Probe:
    """A fresh look at one node. Figures the node kind does not report stay None."""

    up: bool
    error: str = ""
    latency_ms: float | None = None
    version: str | None = None
    uptime_s: int | None = None
    memory_used: int | None = None
    memory_limit: int | None = None
    items: int | None = None
    evictions: int | None = None


@dataclass(frozen=True)
class Counts:
    """Session copies held by one node, keyed by the node id their session key names."""

    primaries: dict[str | None, int] = field(default_factory=dict)
    backups: dict[str | None, int] = field(default_factory=dict)

    @property
    def sessions(self) -> int:
        return sum(self.primaries.values())

    @property
    def backup_copies(self) -> int:
        return sum(self.backups.values())


@dataclass(frozen=True)
class KeyBatch:
    """Storage keys of session copies (primary or ``bak:`` form) found on a node, and where a
    walk that stopped after this batch resumes (None: it cannot resume, start over)."""

    keys: list[str]
    cursor: str | None = None


@dataclass(frozen=True)
class Inspector:
    """The probe, count and key-walk functions of one node kind."""

    probe: Callable[[Store, float], Probe]
    count: Callable[[Store, str, float], Counts] | None
    keys: Callable[[Store, str, float, str | None], Iterator[KeyBatch]] | None = None


def timed_pings(ping: Callable[[], object]) -> float:
    """Median round trip of ``PINGS`` calls, in milliseconds."""
    rtts = []
    for _ in range(PINGS):
        start = time.perf_counter()
        ping()
        rtts.append((time.perf_counter() - start) * 1000)
    return pystats.median(rtts)


def ping_probe(store: Store, timeout: float) -> Probe:
    """The probe of kinds without one of their own: the store's ``ping``."""
    try:
        return Probe(up=True, latency_ms=timed_pings(store.ping))
    except NodeUnavailable as exc:
        return Probe(up=False, error=str(exc.cause))


def inspector_for(node: Node) -> Inspector:
    """Return the probe and count functions of ``node``'s kind."""
    if node.kind is NodeKind.MEMCACHED:
        from .memcached import INSPECTOR

        return INSPECTOR
    if node.kind in (NodeKind.REDIS, NodeKind.CACHE):
        from .redis import INSPECTOR

        return INSPECTOR
    return Inspector(ping_probe, None)
