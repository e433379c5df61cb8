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
from .dispatch import Pending
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
        base: int, home_token: bytes | None, strict: bool, ahead: Pending | None = None,
    ) -> Commit:
        """Save ``copy`` (loaded at revision ``base``); raise SessionConflict when refused.
        ``ahead``: this save's first read of the witness, sent earlier (``read_ahead``).

        Raises NodeUnavailable when neither the witness nor the home took the copy.
        """
        data = self.copies.pack(copy)
        witnessed, mine = self._compare_and_set(
            sid, primary, data, ttl, base, strict, expected=home_token, ahead=ahead
        )
        if witnessed is Witnessed.SUPERSEDED:
            statistics.incr("saves_superseded")
            return Commit(UpdateResult.STORED, None, False)
        if witnessed is Witnessed.COMMITTED:
            assert mine is not None
            return self._after_witness(sid, primary, data, ttl, home_token, (mine, copy.revision))
        outcome, token = self._write_home(
            sid, primary, data, ttl, home_token,
            lambda held: self._replaceable(primary, held, strict),
        )
        if outcome is Home.CHANGED:  # locked: its lock lapsed; unlocked: lost three races
            statistics.incr("save_conflicts" if strict else "saves_superseded")
            if strict:
                raise SessionConflict
            return Commit(UpdateResult.STORED, None, False)
        if outcome is Home.MISSING:
            return Commit(self.copies._after_primary_miss(sid, primary), None, False)
        statistics.incr("saves")
        self._repair(sid, primary, data, ttl, witnessed)
        return Commit(UpdateResult.STORED, token, False)

    def _after_witness(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int,
        home_token: bytes | None, committed: tuple[bytes, int],
    ) -> Commit:
        """The witness committed (``committed``: its copy's version and revision): write the
        home. The home follows the witness: another save's copy there is replaced while no save
        passed the witness after this one. Whatever the home answers, the save stands."""
        try:
            outcome, token = self._write_home(
                sid, primary, data, ttl, home_token,
                lambda _: self._latest(sid, primary, *committed),
            )
        except NodeUnavailable:
            # Not lost (the witness has it): the caller moves the session from this copy.
            statistics.incr("saves_home_unknown")
            return Commit(UpdateResult.LOST, None, True)
        if outcome is Home.MISSING:
            return Commit(UpdateResult.LOST, None, True)
        if outcome is Home.CHANGED:  # a later save passed the witness: the home is its to write
            statistics.incr("saves_superseded")
            return Commit(UpdateResult.STORED, None, True)
        statistics.incr("saves")
        return Commit(UpdateResult.STORED, token, True)

    def _latest(self, sid: SessionId, primary: Node, mine: bytes, revision: int) -> bool:
        """True while no save passed the witness after this one: it holds this save's copy, or
        it lost it (a restart) and holds nothing or an older revision (a repair's restore)."""
        node, key = self.node(primary), self.keys.backup(sid)
        assert node is not None
        try:
            stored, token = self.read(node, key)
        except NodeUnavailable:
            return False
        if stored is None or token == mine:
            return True
        current = self.copies._decode(node, stored)
        return current is not None and not current.is_tombstone and current.revision < revision

    def _replaceable(self, primary: Node, held: bytes, strict: bool) -> bool:
        """Whether a home-only save replaces another save's copy at the home: never when
        locked (its lock lapsed), never a tombstone (SessionConflict); else the last writer
        wins."""
        if strict:
            return False
        current = self.copies._decode(primary, held)
        if current is not None:
            self._refuse_tombstone(current)
        return True

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
        witnessed, _ = self._compare_and_set(sid, primary, data, ttl, base, True)
        if witnessed is Witnessed.MISSING:
            return self._add_at_witness(sid, primary, data, ttl)
        return witnessed is Witnessed.COMMITTED

    def read_ahead(self, sid: SessionId, primary: Node) -> Pending | None:
        """Send the witness read a save of ``sid`` starts with (``core.readahead``); None where
        that save reads nothing first (a single node, versions that follow the bytes)."""
        node = self.node(primary)
        if node is None or self._versions_follow_bytes(primary, node):
            return None
        return self.registry.send_many([(node, "get_versioned", (self.keys.backup(sid),))])

    def read(self, node: Node, key: str) -> tuple[bytes | None, bytes | None]:
        """The stored bytes at ``key`` and their version token (NodeUnavailable)."""
        return self.registry.call(node, lambda s: s.get_versioned(key))

    def cas(self, node: Node, key: str, data: bytes, ttl: int, token: bytes) -> bytes | None:
        """``Store.cas``: the new version if ``data`` replaced the item of
        version ``token``, None if it changed since or is gone. Raises NodeUnavailable."""
        return self.registry.call(node, lambda s: s.cas(key, data, ttl, token))

    # -- internals ------------------------------------------------------------------------
    def _versions_follow_bytes(self, primary: Node, witness: Node) -> bool:
        """Whether both places' versions are digests of the bytes (``Store.tokens_follow_bytes``):
        the home's version then names the witness copy too, and a save reads nothing first."""
        stores = self.registry.stores
        return stores[primary].tokens_follow_bytes and stores[witness].tokens_follow_bytes

    def _compare_and_set(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, base: int, strict: bool,
        expected: bytes | None = None, ahead: Pending | None = None,
    ) -> tuple[Witnessed, bytes | None]:
        """Write ``data`` at the witness after ``_check``; its new version when COMMITTED.

        ``expected``: the version of the copy this request loaded from the home. Where versions
        follow the bytes (``Store.tokens_follow_bytes``) it is also the witness copy's version
        while the witness holds that very copy, a session copy of revision ``base``, which
        passes the check: one compare-and-set then commits without reading the witness first.
        """
        node = self.node(primary)
        if node is None:
            return Witnessed.UNREACHABLE, None
        key = self.keys.backup(sid)
        try:
            if expected is not None and self._versions_follow_bytes(primary, node):
                written = self.cas(node, key, data, ttl, expected)
                if written is not None:
                    return Witnessed.COMMITTED, written
            for attempt in range(CAS_ATTEMPTS):
                answer = ahead.answers()[0] if ahead is not None and not attempt else None
                if answer is None or isinstance(answer, Exception):
                    answer = self.read(node, key)  # not sent ahead, or its node failed then
                stored, token = answer
                if stored is None or token is None:
                    return Witnessed.MISSING, None
                current = self._check(node, stored, base, strict)
                if attempt and not strict and current is not None and current.revision > base:
                    # A save landed between read and CAS. A rewrite of a revision this request
                    # has seen (a repair pass) is not one: that save would be lost for nothing.
                    return Witnessed.SUPERSEDED, None
                written = self.cas(node, key, data, ttl, token)
                if written is not None:
                    return Witnessed.COMMITTED, written
        except NodeUnavailable:
            return Witnessed.UNREACHABLE, None  # a write that timed out may still land
        statistics.incr("save_conflicts")
        raise SessionConflict

    def _check(self, node: Node, stored: bytes, base: int, strict: bool) -> Copy | None:
        """Refuse to overwrite a tombstone, or (strict) a revision this request never saw;
        return the decoded copy (None: unreadable, overwritten)."""
        current = self.copies._decode(node, stored)
        if current is None:
            return None
        self._refuse_tombstone(current)
        if strict and current.revision > base:
            statistics.incr("save_conflicts")
            raise SessionConflict
        return current

    @staticmethod
    def _refuse_tombstone(current: Copy) -> None:
        if current.is_tombstone:
            statistics.incr("save_conflicts")
            moved_to = forward_of(current)
            raise SessionConflict(moved_to, deleted=moved_to is None)

    def _write_home(
        self, sid: SessionId, primary: Node, data: bytes, ttl: int, token: bytes | None,
        may_replace: Callable[[bytes], bool],
    ) -> tuple[Home, bytes | None]:
        """Compare-and-set the home copy against ``token``, the version this request loaded (a
        plain replace when it did not load it from the home). When the home holds another
        copy, ``may_replace(held)`` decides whether this save replaces it after all."""
        key = self.keys.primary(sid)
        if token is None:
            written = self.registry.call(primary, lambda s: s.replace_versioned(key, data, ttl))
            return (Home.MISSING, None) if written is None else (Home.STORED, written)
        for _ in range(CAS_ATTEMPTS):
            written = self.cas(primary, key, data, ttl, token)
            if written is not None:
                return Home.STORED, written
            held, token = self.read(primary, key)
            if held is None or token is None:
                return Home.MISSING, None
            if not may_replace(held):
                break
        return Home.CHANGED, None

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
