"""BackupSessionService: the primary and backup copies of a session, and their failover.

Where copies live (DESIGN.md, "Deterministic backup placement"):

* primary: ``KeyLayout.primary`` on the node the key names;
* backup: ``KeyLayout.backup`` on the first node of ``NodeRegistry.backup_nodes(primary)``
  that is not quarantined. Readers walk the same list, so every process finds it.

What keeps a deleted or relocated session gone: *tombstones*. The first backup place, the key's
witness (``core.witness``), always keeps one; a deletion that cannot reach it leaves them where it
can. A tombstone on the primary stops readers before they look at the backup; a tombstone on the
backup is found when a copy on a node that was away is verified (``NodeHealth.suspect``). A
relocation's tombstone names the new key in its signed payload (``envelope.forward_of``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from operator import methodcaller

from ..clock import Clock
from ..exceptions import CorruptCopy, NodeUnavailable, NoNodesAvailable, SessionTooLarge
from ..stores import Store
from .away import AwayMarks
from .config import MsmConfig
from .envelope import Copy, Kind, compression_of, forward_of, pack, unpack
from .keys import SessionId, new_id
from .nodes import Node
from .outcomes import Loaded, UpdateResult
from .registry import NodeRegistry
from .stats import statistics
from .throttle import LogThrottle

logger = logging.getLogger(__name__)

# Random 32-char keys collide with odds of 36**-32; more than a few failed `add`s on one node
# means something else is wrong, so the loop gives up rather than hammering the node.
CREATE_ATTEMPTS = 3


class BackupSessionService:
    """Reads and writes the copies of sessions through the cluster's registry."""

    def __init__(self, registry: NodeRegistry, config: MsmConfig, away: AwayMarks, clock: Clock):
        self.registry = registry
        self.config = config
        self.away = away
        self.clock = clock
        self.keys = config.keys
        self.throttle = LogThrottle(clock)  # warnings would repeat per request while a node is down
        # Per thread (``_decode``): the last bytes verified and their copy. Per instance, and a
        # new cluster (new keys) builds a new service, so nothing outlives its keys.
        self._verified = threading.local()

    # -- codec --------------------------------------------------------------------------------
    def pack(self, copy: Copy) -> bytes:
        """Sign and size-check a copy before anything is written."""
        config = self.config
        key, limit = config.signing_keys[0], config.max_session_size
        data = pack(copy, key, config.compress_min_size)
        if len(data) > limit and copy.compressed is False:
            # Stored as it is, the session's last decision no longer fits: a sample decides.
            data = pack(dataclasses.replace(copy, compressed=None), key, config.compress_min_size)
        if len(data) > limit:
            raise SessionTooLarge(len(data), limit)
        statistics.observe("serialized_size", len(data))
        return data

    def _decode(self, node: Node, data: bytes | None) -> Copy | None:
        """Verify and decode stored bytes; None (logged) for anything not signed by us.

        The bytes this thread verified since its last load began are remembered with their
        copy: a save reads the witness copy, which is most often the very bytes its load
        verified at the home, and verifying them again would cost a second MAC over the whole
        value (64 KB: ~50 µs). Decoding is a function of the bytes and the keys alone, so the
        answer is the same; each load starts afresh, so a load never skips its own check."""
        if data is None:
            return None
        last = getattr(self._verified, "last", None)
        if last is not None and last[0] == data:
            return last[1]
        try:
            copy = unpack(data, self.config.signing_keys)
        except CorruptCopy as exc:
            statistics.incr("corrupt_copies")
            self.throttle.log(logger, logging.WARNING, node.label,
                              "unreadable session copy on node %s: %s", node.label, exc)
            return None
        self._verified.last = (data, copy)
        return copy

    def _warn(self, sid: SessionId, node: Node, what: str, level: int = logging.WARNING) -> None:
        """Log about one session by its tag and node (never its key), throttled per node."""
        self.throttle.session(logger, level, self.config.tag(sid), node.label, what)

    def new_copy(self, payload: bytes, ttl: int, revision: int, previous: Copy | None = None
                 ) -> Copy:
        """A session copy to write; ``previous``, the session's copy it replaces, lends it the
        compression decision (``envelope.compression_of``)."""
        now = self.clock.time()
        return Copy(Kind.SESSION, revision, now, now + ttl, payload,
                    compressed=compression_of(previous))

    # -- reading ------------------------------------------------------------------------------
    def _read_backup(self, sid: SessionId, primary: Node) -> tuple[Copy | None, Node]:
        """Read every backup place; return the newest copy or tombstone and its node.

        Every place, not the first hit: a node that was away may hold a stale copy while the
        next one holds the current copy or a tombstone, and a process that did not see the
        outage cannot tell. This is the failover path only; it is bounded by the node count.
        """
        best: Copy | None = None
        best_node = primary
        key = self.keys.backup(sid)
        for node in self.registry.backup_nodes(primary):
            try:
                data = self.registry.call(node, lambda store: store.get(key))
            except NodeUnavailable:
                continue
            copy = self._decode(node, data)
            if copy is not None and (best is None or _newer(copy, best)):
                best, best_node = copy, node
        return best, best_node

    @staticmethod
    def _retired(tombstone: Copy | None) -> Loaded:
        """No session under this key: a miss, unless it is a relocation's tombstone, whose
        signed payload names the new key."""
        return Loaded(moved_to=None if tombstone is None else forward_of(tombstone))

    def load(self, sid: SessionId, primary: Node) -> Loaded:
        """Return the current copy of a session, from its primary or else from its backup."""
        self._verified.last = None  # a load verifies what it reads (see ``_decode``)
        loaded = self._load(sid, primary)
        if loaded.unreachable:
            statistics.incr("loads_unreachable")
        elif loaded.copy is None:
            statistics.incr("load_misses")
        else:
            statistics.incr("loads_backup" if loaded.from_backup else "loads_primary")
        return loaded

    def _load(self, sid: SessionId, primary: Node) -> Loaded:
        key = self.keys.primary(sid)
        try:  # the version token fences this request's save of the primary (core.witness)
            data, token = self.registry.call(primary, lambda store: store.get_versioned(key))
        except NodeUnavailable:
            copy, node = self._read_backup(sid, primary)
            if copy is None and self.registry.is_retired(primary):
                # Drained, then retired: a moved session left its forward in the tombstone at
                # its witness, which the read above walked; nothing found means it is gone.
                return Loaded()
            if copy is None:
                # Nothing reachable says the session is gone: keep the cookie, write nothing.
                return Loaded(unreachable=True)
            if copy.is_tombstone:
                return self._retired(copy)
            dead = self.registry.health[primary].dead
            return Loaded(copy, from_backup=True, relocate=dead)
        if data is None:
            # A miss on a live primary: deleted, relocated, expired, evicted, or the node
            # restarted empty.
            backup, _ = self._read_backup(sid, primary)
            if backup is None or backup.is_tombstone:
                return self._retired(backup)
            return Loaded(backup, from_backup=True, relocate=True)
        copy = self._decode(primary, data)
        if copy is None:
            return Loaded()
        if copy.is_tombstone:
            return self._retired(copy)
        self.away.refresh_if_due()  # what other processes saw of the primary
        if self.registry.health[primary].suspect():
            return self._verify(sid, primary, copy)
        return Loaded(copy, token=token)

    def version(self, sid: SessionId, primary: Node) -> bytes | None:
        """Return the primary copy's version token without moving it (NodeUnavailable)."""
        key = self.keys.primary(sid)
        return self.registry.call(primary, lambda store: store.version(key))

    def _verify(self, sid: SessionId, primary: Node, copy: Copy) -> Loaded:
        """Check a copy from a node that was away against the backup (no resurrection).

        Nothing is marked: the node stays suspect until a repair pass has reconciled it
        (``AwayMarks``), so a place that could not be read now is read again next time.
        """
        backup, _ = self._read_backup(sid, primary)
        if backup is not None and backup.is_tombstone:
            self._warn(sid, primary, "was retired while its node was away", logging.INFO)
            return self._retired(backup)
        if backup is not None and backup.revision > copy.revision:
            return Loaded(backup, from_backup=True, relocate=True)
        return Loaded(copy)

    # -- writing ------------------------------------------------------------------------------
    def _try(self, node: Node, operation: Callable[[Store], object]) -> bool:
        try:
            self.registry.call(node, operation)
        except NodeUnavailable:
            return False
        return True

    def write_backup(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, skip: int = 0
    ) -> Node | None:
        """Store the backup copy on the first backup node that takes it (past ``skip`` ones)."""
        key = self.keys.backup(sid)
        passed = self.registry.backup_nodes(primary)[:skip]
        for node in (n for n in self.registry.backup_targets(primary) if n not in passed):
            if self._try(node, lambda store: store.set(key, data, ttl)):
                return node
        if self.registry.backup_targets(primary):
            statistics.incr("backup_write_failures")
            self._warn(sid, primary, "has no backup copy: no backup node available")
            self.registry.events.backup_failed(str(primary.id))  # repair (issue 11)
        return None

    def create(self, copy: Copy, ttl: int, route: str | None) -> tuple[SessionId, bytes]:
        """Store a new session under a fresh key on an available node (atomic ``add``).

        Return the key and the primary copy's version token.
        """
        data = self.pack(copy)
        causes: dict[str, str] = {}
        for node in self.registry.new_session_nodes():
            for _ in range(CREATE_ATTEMPTS):
                sid = new_id(node.id, route)
                try:
                    token = self._add_both(sid, node, data, ttl)
                except NodeUnavailable as exc:
                    causes[node.label] = str(exc.cause)
                    break
                if token is not None:
                    statistics.incr("creates")
                    self.away.refresh_once()  # generations exist before a node restarts unseen
                    return sid, token
            else:
                causes[node.label] = f"{CREATE_ATTEMPTS} key collisions in a row"
        raise NoNodesAvailable(causes)

    def add(self, sid: SessionId, primary: Node, copy: Copy, ttl: int) -> bytes | None:
        """Store a session under a given key only if the key is free; return its token."""
        return self._add_both(sid, primary, self.pack(copy), ttl)

    def _add_both(self, sid: SessionId, primary: Node, data: bytes, ttl: int) -> bytes | None:
        """Add the primary copy and, in the same round trip, the backup copy on the first backup
        target (the witness); return the primary's token, None if the key exists. A backup
        that did not go there is written as ``write_backup`` does; one added for a key that
        was not created goes again (no client has that key)."""
        key, backup_key = self.keys.primary(sid), self.keys.backup(sid)
        targets = self.registry.backup_targets(primary)[:1]
        token, *backup = self.registry.call_many(
            [(primary, "add_versioned", (key, data, ttl))]
            + [(node, "add", (backup_key, data, ttl)) for node in targets]
        )
        if isinstance(token, NodeUnavailable) or token is None:
            if backup == [True]:
                self._try(targets[0], methodcaller("delete", backup_key))
            if isinstance(token, NodeUnavailable):
                raise token
            return None
        if targets and backup != [True]:
            self.write_backup(sid, primary, data, ttl)
        return bytes(token)

    def update(
        self, sid: SessionId, primary: Node, copy: Copy, ttl: int
    ) -> tuple[UpdateResult, bytes | None]:
        """Rewrite an existing session in one round trip (``replace``), never resurrecting it.

        Return the outcome and the new version token. Raises NodeUnavailable when the primary
        cannot be written: the caller relocates.
        """
        data, key = self.pack(copy), self.keys.primary(sid)
        token = self.registry.call(primary, lambda store: store.replace_versioned(key, data, ttl))
        if token is not None:
            statistics.incr("saves")
            self.write_backup(sid, primary, data, ttl)
            return UpdateResult.STORED, token
        return self._after_primary_miss(sid, primary), None

    def touch(self, sid: SessionId, primary: Node, copy: Copy, ttl: int) -> UpdateResult:
        """Refresh the expiry of both copies without rewriting them; repair a missing backup.

        Raises NodeUnavailable when the primary cannot be reached.
        """
        key = self.keys.primary(sid)
        if not self.registry.call(primary, lambda store: store.touch(key, ttl)):
            return self._after_primary_miss(sid, primary)
        statistics.incr("touches")
        bkey = self.keys.backup(sid)
        for node in self.registry.backup_targets(primary):
            if self.registry.health[node].suspect():
                break  # it was away: its copy may be stale, so rewrite rather than touch
            try:
                if self.registry.call(node, lambda store: store.touch(bkey, ttl)):
                    return UpdateResult.STORED
            except NodeUnavailable:
                continue
            break
        self.write_backup(sid, primary, self.pack(copy), ttl)
        return UpdateResult.STORED

    def _after_primary_miss(self, sid: SessionId, primary: Node) -> UpdateResult:
        """The primary has no copy: LOST if a backup copy lives on, else DELETED."""
        backup, _ = self._read_backup(sid, primary)
        if backup is not None and not backup.is_tombstone:
            return UpdateResult.LOST
        return UpdateResult.DELETED


def _newer(candidate: Copy, best: Copy) -> bool:
    """Which of two copies of one key wins: a tombstone beats every session copy (keys are
    never reused, so a tombstone retires its key for good, whatever clocks wrote them);
    between two copies of one kind the higher revision."""
    if candidate.is_tombstone != best.is_tombstone:
        return candidate.is_tombstone
    return candidate.revision > best.revision
