"""Writes fenced at a session's witness: no fork and no lost acknowledged update while processes
disagree about node health (issue 12; README, "Locking").

Every key K has two places that every process derives from K alone, whatever it thinks of node
health: its *home*, the node K names (K's lock and primary copy), and its *witness*, the first
node after the home in configured order (K's backup copy). The witness copy is the commit point:

* a save is a compare-and-set of the witness copy, refused when the witness holds a tombstone
  or, for a request that wanted its lock (*strict*), a newer revision than it loaded; only then
  is the home copy written. A home write that fails or times out after that is not a lost save
  (the witness has it): the session moves, by a claim starting from that copy;
* a relocation turns the witness copy of K into a tombstone naming the new key, by the same
  compare-and-set (``swap``): of two requests moving K one wins, so a key moves at most once;
* a deletion leaves a tombstone at the witness too, so "the witness has no copy" only ever
  means lost data (a restart, an eviction), never a logout (``core.retirement``).

When the witness cannot be reached a save commits at the home alone, compare-and-set against
the version this request loaded (nobody can move K meanwhile: moving needs the witness); a
relocation is refused. With a single node the home is all there is: saves commit there alone.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import NodeUnavailable, SessionConflict
from .copies import BackupSessionService, UpdateResult
from .envelope import Copy, forward_of
from .keys import SessionId
from .nodes import Node
from .stats import statistics
from .sticky import StickyCopies

logger = logging.getLogger(__name__)
CAS_ATTEMPTS = 3  # a token changed under an acceptable revision is read again; more: contention


class Witnessed(enum.Enum):
    """What the compare-and-set at the witness did."""

    COMMITTED = "committed"
    MISSING = "missing"  # no witness copy: restarted or evicted
    SUPERSEDED = "superseded"  # unlocked: a concurrent write landed meanwhile (last writer wins)
    UNREACHABLE = "unreachable"  # or no witness at all (a single node)


class Home(enum.Enum):
    """What the compare-and-set of the home copy did."""

    STORED = "stored"
    CHANGED = "changed"  # the home copy is not the one this request loaded
    MISSING = "missing"


@dataclass(frozen=True)
class Commit:
    """A save's outcome: ``LOST`` asks the caller to move the session."""

    result: UpdateResult
    token: bytes | None  # the home copy's new version token, when known
    at_witness: bool  # the witness holds this request's copy


class Witness:
    """Compare-and-set commits, relocation claims and deletions at a key's witness."""

    def __init__(self, copies: BackupSessionService):
        self.copies = copies
        self.registry = copies.registry
        self.keys = copies.keys

    def node(self, primary: Node) -> Node | None:
        """The witness of keys homed on ``primary`` (None with a single node)."""
        after = self.registry.backup_nodes(primary)
        return after[0] if after else None

    def commit(
        self, sid: SessionId, primary: Node, copy: Copy, ttl: int,
        base: int, home_token: bytes | None, strict: bool,
    ) -> Commit:
        """Save ``copy`` (loaded at revision ``base``); raise SessionConflict when refused.

        Raises NodeUnavailable when neither the witness nor the home took the copy.
        """
        data = self.copies.pack(copy)
        witnessed = self._compare_and_set(sid, primary, data, ttl, base, strict)
        if witnessed is Witnessed.SUPERSEDED:
            statistics.incr("saves_superseded")
            return Commit(UpdateResult.STORED, None, False)
        if witnessed is Witnessed.COMMITTED:
            return self._after_witness(sid, primary, data, ttl, home_token, strict)
        outcome, token = self._write_home(sid, primary, data, ttl, home_token)
        if outcome is Home.CHANGED:
            return self._home_changed(sid, primary, strict)
        if outcome is Home.MISSING:
            return Commit(self.copies._after_primary_miss(sid, primary), None, False)
        statistics.incr("saves")
        self._repair(sid, primary, data, ttl, witnessed)
        return Commit(UpdateResult.STORED, token, False)

    def _after_witness(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int,
        home_token: bytes | None, strict: bool,
    ) -> Commit:
        """The witness committed: write the home. Whatever the home answers, the save stands."""
        try:
            outcome, token = self._write_home(sid, primary, data, ttl, home_token)
        except NodeUnavailable:
            # Not lost (the witness has it): the caller moves the session from this copy.
            statistics.incr("saves_home_unknown")
            return Commit(UpdateResult.LOST, None, True)
        if outcome is Home.MISSING:
            return Commit(UpdateResult.LOST, None, True)
        if outcome is Home.CHANGED:
            # Unlocked: a later writer passed the witness after this one and wrote the home
            # first (it wins). Locked: a home-only commit while this process reached the
            # witness and another did not. Left as it is: the home is never written blind.
            statistics.incr("saves_home_diverged")
            if strict:
                logger.warning("a session's home copy on node %s changed under its lock; the "
                               "witness keeps this request's copy", primary.label)
            return Commit(UpdateResult.STORED, None, True)
        statistics.incr("saves")
        return Commit(UpdateResult.STORED, token, True)

    def _home_changed(self, sid: SessionId, primary: Node, strict: bool) -> Commit:
        """A home-only commit found another copy than the one loaded: refused when locked (its
        lock lapsed), superseded when not, unless the home holds a tombstone."""
        if strict:
            statistics.incr("save_conflicts")
            raise SessionConflict
        key = self.keys.primary(sid)
        current = self.copies._decode(primary, self.registry.call(primary, lambda s: s.get(key)))
        if current is not None:
            self._refuse_tombstone(current)
        statistics.incr("saves_superseded")
        return Commit(UpdateResult.STORED, None, False)

    def later(
        self, sid: SessionId, primary: Node, copy: Copy, ttl: int, base: int,
        sticky: StickyCopies | None,
    ) -> Callable[[], None]:
        """SESSION_BACKUP_ASYNC's write of one save, run after the response: an unlocked commit
        (last writer wins, never over a tombstone). The home is replaced, not compared: the
        request may have loaded it before this process's earlier writes landed. If the home
        lost the session or cannot be reached, the witness keeps the new content, so the next
        request moves it with it."""

        def write() -> None:
            try:
                commit = self.commit(sid, primary, copy, ttl, base, None, strict=False)
            except SessionConflict:  # moved or deleted meanwhile: the write is dropped
                commit = Commit(UpdateResult.DELETED, None, False)
            except NodeUnavailable:
                commit = Commit(UpdateResult.LOST, None, False)
                self.copies.write_backup(sid, primary, self.copies.pack(copy), ttl)
            if sticky is not None:
                if commit.result is UpdateResult.STORED:
                    sticky.confirm(str(sid), copy, commit.token)
                else:
                    sticky.forget(str(sid))
            if commit.result is UpdateResult.DELETED:
                logger.warning("a session on node %s was deleted or moved before its write; "
                               "not written", primary.label)

        return write

    def swap(self, sid: SessionId, primary: Node, data: bytes, ttl: int, base: int) -> bool:
        """Replace the witness copy of K by ``data`` under the strict check (SessionConflict),
        or create it where there is none; False if the witness cannot be reached."""
        witnessed = self._compare_and_set(sid, primary, data, ttl, base, True)
        if witnessed is Witnessed.MISSING:
            return self._add_at_witness(sid, primary, data, ttl)
        return witnessed is Witnessed.COMMITTED

    def read(self, node: Node, key: str) -> tuple[bytes | None, bytes | None]:
        """The stored bytes at ``key`` and their version token (NodeUnavailable)."""
        return self.registry.call(node, lambda s: s.get_versioned(key))

    def cas(self, node: Node, key: str, data: bytes, ttl: int, token: bytes) -> bool:
        """``Store.replace_if_version``: True if ``data`` replaced the item of version ``token``
        (False: it changed since, or is gone). Raises NodeUnavailable."""
        written = self.registry.call(node, lambda s: s.replace_if_version(key, data, ttl, token))
        return written is not None

    # -- internals ------------------------------------------------------------------------
    def _compare_and_set(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, base: int, strict: bool
    ) -> Witnessed:
        node = self.node(primary)
        if node is None:
            return Witnessed.UNREACHABLE
        key = self.keys.backup(sid)
        try:
            for attempt in range(CAS_ATTEMPTS):
                stored, token = self.read(node, key)
                if stored is None or token is None:
                    return Witnessed.MISSING
                self._check(node, stored, base, strict)
                if attempt and not strict:
                    return Witnessed.SUPERSEDED  # a write landed between the read and the CAS
                if self.cas(node, key, data, ttl, token):
                    return Witnessed.COMMITTED
        except NodeUnavailable:
            return Witnessed.UNREACHABLE  # a write that timed out may still land: harmless
        statistics.incr("save_conflicts")
        raise SessionConflict

    def _check(self, node: Node, stored: bytes, base: int, strict: bool) -> None:
        """Refuse to overwrite a tombstone, or (strict) a revision this request never saw."""
        current = self.copies._decode(node, stored)
        if current is None:
            return  # unreadable: overwritten
        self._refuse_tombstone(current)
        if strict and current.revision > base:
            statistics.incr("save_conflicts")
            raise SessionConflict

    @staticmethod
    def _refuse_tombstone(current: Copy) -> None:
        if current.is_tombstone:
            statistics.incr("save_conflicts")
            moved_to = forward_of(current)
            raise SessionConflict(moved_to, deleted=moved_to is None)

    def _write_home(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, token: bytes | None
    ) -> tuple[Home, bytes | None]:
        """Compare-and-set the home copy against the loaded version (a plain replace when this
        request did not load it from the home); which failure it was costs a second call."""
        key = self.keys.primary(sid)
        if token is None:
            written = self.registry.call(primary, lambda s: s.replace_versioned(key, data, ttl))
            return (Home.MISSING, None) if written is None else (Home.STORED, written)
        written = self.registry.call(
            primary, lambda s: s.replace_if_version(key, data, ttl, token)
        )
        if written is not None:
            return Home.STORED, written
        present = self.registry.call(primary, lambda s: s.version(key)) is not None
        return (Home.CHANGED if present else Home.MISSING), None

    def _add_at_witness(self, sid: SessionId, primary: Node, data: bytes, ttl: int) -> bool:
        node, key = self.node(primary), self.keys.backup(sid)
        assert node is not None
        try:
            return self.registry.call(node, lambda s: s.add(key, data, ttl))
        except NodeUnavailable:
            return False

    def _repair(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, witnessed: Witnessed
    ) -> None:
        """After a home-only save: a fresh witness copy where there was none (``add``: never
        over a tombstone), else a copy past the unreachable witness."""
        if witnessed is Witnessed.MISSING:
            self._add_at_witness(sid, primary, data, ttl)
        elif self.node(primary) is not None:
            self.copies.write_backup(sid, primary, data, ttl, skip=1)
