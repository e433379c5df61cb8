"""How a session key ends: a relocation that only one request can win, and a deletion that
leaves its tombstone at the key's witness (issue 12; the fence itself is ``core.witness``).

* ``relocate``: create the new key first (with its own backup), then *claim* the old one: its
  witness copy becomes a tombstone whose signed payload names the new key, by compare-and-set
  against the revision the mover started from. Of two requests moving one key, the loser
  discards its new key, which no client saw, and learns the winner's (SessionConflict). After a
  won claim every other copy of the old key goes (``retire``).
* ``delete``: logout, flush, cycle_key. The witness keeps a tombstone, never written over a
  relocation's, so a request that loaded the session earlier cannot bring it back by moving it.
"""

from __future__ import annotations

import logging
from operator import methodcaller

from ..exceptions import NodeUnavailable, SessionConflict
from .config import MsmConfig
from .copies import BackupSessionService
from .envelope import Copy, Kind
from .events import ClusterEvents
from .failover import MoveReason
from .keys import SessionId
from .nodes import Node
from .stats import statistics
from .witness import CAS_ATTEMPTS, Witness

logger = logging.getLogger(__name__)
Located = tuple[SessionId, Node]


class Retirement:
    """Relocations and deletions of session keys, fenced at their witness."""

    def __init__(self, witness: Witness, config: MsmConfig, events: ClusterEvents):
        self.witness = witness
        self.copies: BackupSessionService = witness.copies
        self.registry = witness.registry
        self.keys = witness.keys
        self.config = config
        self.events = events

    def relocate(
        self, located: Located, copy: Copy, ttl: int, base: int, reason: MoveReason,
        home_token: bytes | None,
    ) -> tuple[SessionId, bytes]:
        """Move the session of ``located`` (loaded at revision ``base``) to a new key on a live
        node; return it and its primary's version token. Raises SessionConflict when another
        request moved or changed the session since, or when the claim cannot be made."""
        old_sid, old_node = located
        new_sid, token = self.copies.create(copy, ttl, self.config.route)
        try:
            self.claim(old_sid, old_node, base, new_sid, ttl, home_token)
        except SessionConflict:
            new_node = self.registry.node_for(new_sid)
            if new_node is not None:  # no client saw it: removed, not counted as a deletion
                self._remove(new_sid, new_node, ttl, copy.revision)
            raise
        self.retire(old_sid, old_node)
        logger.info("a session moved from node %s to node %s (%s)",
                    old_node.label, new_sid.node_id, reason.value)
        statistics.incr("takeovers" if reason is MoveReason.TAKEOVER else "relocations")
        self.events.session_moved(reason, str(old_sid), str(new_sid))
        return new_sid, token

    def claim(
        self, sid: SessionId, primary: Node, base: int, new_sid: SessionId, ttl: int,
        home_token: bytes | None = None,
    ) -> None:
        """Retire K in favour of ``new_sid``; raise SessionConflict if another request moved or
        changed K since it was loaded at ``base``, or if the claim cannot be made."""
        now = self.copies.clock.time()
        forward = str(new_sid).encode()
        tombstone = self.copies.pack(Copy(Kind.TOMBSTONE, base + 1, now, now + ttl, forward))
        if self.witness.node(primary) is None:  # a single node: the home is its own witness
            claimed = self._claim_home(sid, primary, tombstone, ttl, home_token)
        else:
            claimed = self.witness.swap(sid, primary, tombstone, ttl, base)
        if not claimed:
            statistics.incr("relocations_refused")
            raise SessionConflict

    def _claim_home(
        self, sid: SessionId, primary: Node, tombstone: bytes, ttl: int, token: bytes | None
    ) -> bool:
        if token is None:
            return False
        try:
            claimed = self.witness.cas(primary, self.keys.primary(sid), tombstone, ttl, token)
        except NodeUnavailable:
            return False
        return claimed is not None

    def retire(self, sid: SessionId, primary: Node) -> None:
        """After a won claim every other copy of K goes; the witness keeps the tombstone.

        A home that cannot be reached keeps its copy until it answers again; a write to it can
        no longer commit (the witness refuses it), and its readers learn of the move from the
        witness (``NodeHealth.suspect``)."""
        after = self.registry.backup_nodes(primary)
        if not after:
            return  # a single node: the home holds the tombstone
        places = [(primary, self.keys.primary(sid))]
        places += [(node, self.keys.backup(sid)) for node in after[1:]]
        for node, key in places:
            self.copies._try(node, methodcaller("delete", key))

    def delete(self, sid: SessionId, primary: Node, ttl: int, revision: int = 0) -> None:
        """Logout, flush, cycle_key: a tombstone at the witness (never over a relocation's, whose
        forward stays) and every other copy removed. Where the witness does not take it,
        tombstones wherever a copy may live (``bury``)."""
        statistics.incr("deletes")
        self._remove(sid, primary, ttl, revision)

    def _remove(self, sid: SessionId, primary: Node, ttl: int, revision: int) -> None:
        if self.witness.node(primary) is None:  # a single node: no other copy to stop
            key = self.keys.primary(sid)
            if not self.copies._try(primary, lambda store: store.delete(key)):
                logger.error("a session on node %s could not be deleted", primary.label)
            return
        now = self.copies.clock.time()
        tombstone = self.copies.pack(Copy(Kind.TOMBSTONE, revision + 1, now, now + ttl))
        if self._bury_at_witness(sid, primary, tombstone, ttl):
            self.retire(sid, primary)
        else:
            self.bury(sid, primary, tombstone, ttl)

    def _bury_at_witness(self, sid: SessionId, primary: Node, tombstone: bytes, ttl: int) -> bool:
        """Put ``tombstone`` at the witness unless a tombstone is there; False if it could not
        be done (unreachable, or a write landed between each read and its compare-and-set)."""
        node, key = self.witness.node(primary), self.keys.backup(sid)
        assert node is not None
        try:
            for _ in range(CAS_ATTEMPTS):
                stored, token = self.witness.read(node, key)
                if stored is None or token is None:
                    if self.registry.call(node, lambda s: s.add(key, tombstone, ttl)):
                        return True
                    continue
                current = self.copies._decode(node, stored)
                if current is not None and current.is_tombstone:
                    return True  # retired already: a relocation's forward stays
                if self.witness.cas(node, key, tombstone, ttl, token) is not None:
                    return True
        except NodeUnavailable:
            return False
        return False

    def bury(self, sid: SessionId, primary: Node, tombstone: bytes, ttl: int) -> None:
        """A deletion whose witness did not take its tombstone: ``tombstone`` on every node it
        reaches, in every place a copy of the session may live, so none comes back."""
        places = [(primary, self.keys.primary(sid))]
        places += [(node, self.keys.backup(sid)) for node in self.registry.backup_nodes(primary)]
        reached = [
            node for node, key in places
            if self.copies._try(node, methodcaller("set", key, tombstone, ttl))
        ]
        if not reached:
            logger.error("a session of node %s could not be deleted: no node holding it "
                         "answered", primary.label)
