"""Cluster: one process's parts for a configuration, composed in one place.

``django_msm.runtime`` builds one from the settings and keeps it process-wide; tests build their
own from an ``MsmConfig`` and in-memory stores. Each part is handed what it needs here and
nothing reaches through another part to find a third:

* ``registry``: nodes, stores, health, placement, guarded calls;
* ``away``: the away marks shared through the nodes (told of every failed call);
* ``copies``: where a session's copies are and how they are read and written;
* ``witness`` and ``retirement``: saves, relocations and deletions fenced at each key's
  witness node;
* ``locker`` and ``read_only``: session locking and ``auto`` mode's memory;
* ``writer``: SESSION_BACKUP_ASYNC's worker pool (None for synchronous writes);
* ``rotation``: re-signs copies verified with a ``SECRET_KEY_FALLBACKS`` key;
* ``sticky``: sticky mode's process-local copies and the host's version table (None otherwise);
* ``users``: the per-user index of sessions and their ending (None with USER_SESSIONS off);
* ``throttle``: repeated warnings, at most one per node and message per minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..clock import Clock, SystemClock
from ..stores import Store
from .away import AwayMarks
from .config import MsmConfig
from .copies import BackupSessionService
from .events import ClusterEvents
from .hostversions import HostVersions
from .locking import ReadOnlyRequests, SessionLocker
from .nodes import Node
from .registry import NodeRegistry
from .retirement import Retirement
from .rotation import KeyRotation
from .stats import statistics
from .sticky import LocalSessions, StickyCopies
from .throttle import LogThrottle
from .user_index import UserIndex
from .user_service import UserSessionService
from .witness import Witness
from .writer import BackupWriter

logger = logging.getLogger(__name__)
_unusable_tables: set[str] = set()  # warned about once per process


class Cluster:
    """The parts of django_msm for one configuration in one process."""

    def __init__(
        self,
        config: MsmConfig,
        clock: Clock | None = None,
        stores: dict[Node, Store] | None = None,
        events: ClusterEvents | None = None,
    ):
        self.config = config
        self.clock = clock or SystemClock()
        self.events = events or ClusterEvents()
        self.keys = config.keys
        statistics.enabled = config.enable_statistics
        self.registry = NodeRegistry(config, self.clock, stores, self.events)
        self.away = AwayMarks(self.registry, self.keys, self.clock, config.session_lifetime)
        self.away.configure(config)
        self.registry.on_failure = self.away.publish
        self.writer = (
            BackupWriter(config.backup_threads, config.backup_queue_size)
            if config.backup_async
            else None
        )
        self.read_only = ReadOnlyRequests()
        self.local: LocalSessions | None = None
        self.sticky: StickyCopies | None = None
        if config.sticky:
            self.local = LocalSessions(config.local_cache_entries, config.local_cache_bytes)
            self.sticky = StickyCopies(self.local, _host_versions(config, self.clock))
        # One throttle for the process's repeated warnings (one per node and message a minute).
        self.throttle = LogThrottle(self.clock)
        self.copies = BackupSessionService(self.registry, config, self.away, self.clock)
        self.witness = Witness(self.copies)
        self.retirement = Retirement(self.witness, config, self.events)
        self.locker = SessionLocker(self.registry, config, self.clock, throttle=self.throttle)
        self.rotation = KeyRotation(self.registry, config, self.clock)
        self.users: UserSessionService | None = None
        if config.user_sessions:
            self.users = UserSessionService(
                UserIndex(self.registry, config, self.clock), self.copies, self.retirement,
                self.registry, config, self.clock, self.events, self.sticky,
            )
        # What the composition root hangs on this cluster (automatic repair's thread): stopped
        # first when the cluster closes.
        self.on_close: list[Callable[[], None]] = []

    def close(self) -> None:
        """Stop background work, flush pending backup writes, unmap the host table, close the
        node connections."""
        for stop in self.on_close:
            stop()
        if self.writer is not None:
            self.writer.flush()
        if self.sticky is not None and self.sticky.host is not None:
            self.sticky.host.close()
        self.registry.close()


def _host_versions(config: MsmConfig, clock: Clock) -> HostVersions | None:
    """The host's version table, or None: sticky mode works without it (every read asks the
    node for the version), so a table that cannot be used is a warning, never a failed request."""
    if not (config.sticky and config.route and config.host_version_slots):
        return None
    nodes = ",".join(node.address for node in config.nodes)
    secret = config.signing_keys[0].hex()[:16]
    identity = f"{secret}|{config.storage_prefix}|{config.route}|{nodes}"
    path = HostVersions.path_for(identity)
    try:
        HostVersions.remove_stale()
        return HostVersions(path, config.host_version_slots, config.host_version_trust, clock)
    except OSError as exc:
        if path not in _unusable_tables:
            _unusable_tables.add(path)
            logger.warning("sticky mode without the host version table %s (%s): every read "
                           "asks the node for the session's version", path, exc)
        return None
