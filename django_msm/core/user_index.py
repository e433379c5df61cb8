"""UserIndex: which sessions each user has, kept on the nodes (issue 15).

The cache has no index from users to sessions, so "log out everywhere" needs one of its own. Each
user's index is a list of entries (session key, created, last seen, the session's expiry age, IP
address and user agent), stored as a signed envelope (``core.envelope``) in two copies, like a
session:

* primary: ``KeyLayout.user`` on the regular node the user id's rendezvous hash picks, so every
  process picks the same node and adding a node moves only the indexes that now hash to it;
* backup: ``KeyLayout.user_backup`` on the next nodes of ``NodeRegistry.backup_nodes(primary)``.

Writes are compare-and-set (``Store.cas``, or ``add_versioned`` for a new index) on the first
place that answers (the primary; the backup while the primary is unreachable), retried on fresh
data when another process won the race; the copies after it are then rewritten over the version
this writer read, never over one it has not seen.

Readers merge every copy they reach: the union of their entries. An entry only says "this
session may exist"; the session's own copies decide whether it does (``core.user_service``
verifies them). So a copy that missed a removal costs one verification, never a resurrection,
while a copy that missed an addition cannot hide a session from "log out everywhere".
Entries whose session must have expired (last seen + touch interval + expiry age in the past)
are dropped whenever an index is read, and the index item itself expires after its last entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..clock import Clock
from ..exceptions import CorruptCopy, NodeUnavailable
from .config import MsmConfig
from .dispatch import Call, Pending
from .envelope import Copy, Kind, pack, unpack
from .nodes import Node
from .registry import NodeRegistry
from .stats import statistics

logger = logging.getLogger(__name__)

# Lost compare-and-set races in a row before an update gives up (logged and counted): a few
# logins of one user at the same moment, not a loop that could hold a request.
CAS_ATTEMPTS = 4
USER_AGENT_LENGTH = 256


@dataclass(frozen=True)
class Entry:
    """One session of a user as the index knows it (times are wall-clock seconds)."""

    key: str
    created: int
    last_seen: int
    age: int  # the session's expiry age (seconds) when it was last seen
    ip: str | None = None
    user_agent: str | None = None

    def expired(self, now: float, interval: float, lifetime: int) -> bool:
        """True once the session must have expired: unseen for longer than it can live (the
        longer of its own age and SESSION_COOKIE_AGE, plus the touch interval's lag)."""
        return now > self.last_seen + interval + max(self.age, lifetime)

    def as_list(self) -> list[object]:
        return [self.key, self.created, self.last_seen, self.age, self.ip, self.user_agent]


Change = Callable[[list[Entry]], list[Entry]]


@dataclass
class Prefetch:
    """A user's index places and their reads, deferred (``UserIndex.prefetch``); whoever
    holds one settles it (``pending.settle()``) even if unused, to hand its connections back."""

    user_id: str
    places: list[tuple[Node, str]]
    pending: Pending


@dataclass
class _Place:
    """One place an index copy lives, as read: its node, key, version token and copy."""

    node: Node
    key: str
    token: bytes | None
    copy: Copy | None
    entries: list[Entry] = field(default_factory=list)


def encode(entries: list[Entry]) -> bytes:
    return json.dumps([entry.as_list() for entry in entries], separators=(",", ":")).encode()


def decode(payload: bytes) -> list[Entry]:
    """Raise CorruptCopy for anything that is not a list of entries (the signature held, so
    only another version of this code could have written it)."""
    try:
        return [Entry(str(k), int(c), int(s), int(a), i, u) for k, c, s, a, i, u in
                json.loads(payload)]
    except (ValueError, TypeError) as exc:
        raise CorruptCopy(f"unreadable user index: {exc}") from exc


def merge(places: list[_Place]) -> list[Entry]:
    """The union of every copy's entries; of two entries for one session, the later seen."""
    merged: dict[str, Entry] = {}
    for place in places:
        for entry in place.entries:
            known = merged.get(entry.key)
            if known is None or entry.last_seen > known.last_seen:
                merged[entry.key] = entry
    return list(merged.values())


class UserIndex:
    """Reads and compare-and-set updates of users' indexes through the cluster's registry."""

    def __init__(self, registry: NodeRegistry, config: MsmConfig, clock: Clock):
        self.registry = registry
        self.config = config
        self.clock = clock
        self.keys = config.keys
        self._regular = [node for node in registry.nodes if not node.failover] or list(
            registry.nodes
        )

    def primary(self, user_id: str) -> Node:
        """The regular node with the highest rendezvous score for this user id."""

        def score(node: Node) -> bytes:
            return hashlib.blake2b(f"{node.id}|{user_id}".encode(), digest_size=8).digest()

        return max(self._regular, key=score)

    def places(self, user_id: str) -> list[tuple[Node, str]]:
        primary = self.primary(user_id)
        backup = self.keys.user_backup(user_id)
        return [(primary, self.keys.user(user_id))] + [
            (node, backup) for node in self.registry.backup_nodes(primary)
        ]

    # -- reading ------------------------------------------------------------------------------
    def read(self, user_id: str) -> list[Entry]:
        """The user's entries from every copy reached, expired ones dropped."""
        return self._live(merge(self._read_places(user_id)))

    def prefetch(self, user_id: str) -> Prefetch:
        """The reads of the user's index, for an ``update`` that follows a write of the
        session: deferred, they leave with the session's write, in the same write on each node
        (``core.dispatch``), so the two share a round trip instead of taking one each."""
        places = self.places(user_id)
        return Prefetch(user_id, places, self.registry.send_many(_reads(places), defer=True))

    def _read_places(self, user_id: str, ahead: Prefetch | None = None) -> list[_Place]:
        """Every place that answered, in placement order (bounded by the node count)."""
        if ahead is not None and ahead.user_id == user_id:
            places, answers = ahead.places, ahead.pending.answers()
        else:
            places = self.places(user_id)
            answers = self.registry.call_many(_reads(places))
        return [
            self._decoded(node, key, *answer)
            for (node, key), answer in zip(places, answers, strict=True)
            if not isinstance(answer, NodeUnavailable)
        ]

    def _decoded(self, node: Node, key: str, data: bytes | None, token: bytes | None) -> _Place:
        place = _Place(node, key, token, None)
        if data is None:
            return place
        try:
            place.copy = unpack(data, self.config.signing_keys)
            place.entries = decode(place.copy.payload)
        except CorruptCopy as exc:
            statistics.incr("corrupt_copies")
            logger.warning("unreadable user index on node %s: %s", node.label, exc)
        return place

    def _live(self, entries: list[Entry]) -> list[Entry]:
        now, config = self.clock.time(), self.config
        return [
            e for e in entries
            if not e.expired(now, config.user_touch_interval, config.session_lifetime)
        ]

    # -- writing ------------------------------------------------------------------------------
    def update(
        self, user_id: str, change: Change, ahead: Prefetch | None = None
    ) -> list[Entry] | None:
        """Apply ``change`` to the current entries with compare-and-set; return what was stored
        (or found unchanged), None if no place answered or the races were all lost. A
        ``prefetch`` of this user's index stands for the first read (its versions fence the
        writes as a read's would)."""
        for _ in range(CAS_ATTEMPTS):
            places, ahead = self._read_places(user_id, ahead), None
            if not places:
                statistics.incr("user_index_unreachable")
                logger.warning("no node holding a user index answered")
                return None
            current = self._live(merge(places))
            wanted = change(list(current))
            if wanted == current and places[0].copy is not None:
                return current
            copy, data, ttl = self._new_copy(places, wanted)
            written = self._write_first(places[:2], data, ttl)
            if written[0]:
                self._follow(places[1:], copy, ttl, written[1:])
                statistics.incr("user_index_writes")
                return wanted
        statistics.incr("user_index_conflicts")
        logger.warning("a user index update lost %d races in a row; not applied", CAS_ATTEMPTS)
        return None

    def _new_copy(self, places: list[_Place], entries: list[Entry]) -> tuple[Copy, bytes, int]:
        revision = max((p.copy.revision for p in places if p.copy is not None), default=0) + 1
        now, config = self.clock.time(), self.config
        last = max((e.last_seen + max(e.age, config.session_lifetime) for e in entries),
                   default=now)
        ttl = max(1, math.ceil(last + config.user_touch_interval - now) + 60)
        copy = Copy(Kind.SESSION, revision, now, now + ttl, encode(entries))
        return copy, self._pack(copy), ttl

    def _write(self, place: _Place, data: bytes, ttl: int) -> bool:
        """Compare-and-set over the version read (an add where there was none)."""
        return self._write_first([place], data, ttl)[0]

    def _write_first(self, places: list[_Place], data: bytes, ttl: int) -> list[bool]:
        """``_write`` of each place, all in one round trip (the first place and the backup):
        the first decides; a backup written over the version read is the version this writer
        merged, so a lost race there only costs the loser a retry."""
        answers = self.registry.call_many([
            (p.node, "add_versioned", (p.key, data, ttl)) if p.token is None
            else (p.node, "cas", (p.key, data, ttl, p.token))
            for p in places
        ])
        for place, answer in zip(places, answers, strict=True):
            place.token = None if isinstance(answer, NodeUnavailable) else answer
        return [place.token is not None for place in places]

    def _follow(self, others: list[_Place], copy: Copy, ttl: int, written: list[bool]) -> None:
        """Bring the other copies to this version: the next place always (the backup), unless
        it was written with the first; later places only where a copy was found (leftovers
        of an earlier outage)."""
        for index, place in enumerate(others):
            if index == 0 and written and written[0]:
                continue
            if index == 0 or place.copy is not None:
                self._catch_up(place, copy, ttl)

    def _catch_up(self, place: _Place, copy: Copy, ttl: int) -> None:
        """Write ``copy`` over the version of this place that was read (and merged into it). If
        the place changed meanwhile: stop at a later revision, else merge what it holds now."""
        for _ in range(CAS_ATTEMPTS):
            if self._write(place, self._pack(copy), ttl):
                return
            try:
                data, token = self.registry.call(place.node, lambda s: s.get_versioned(place.key))
            except NodeUnavailable:
                return
            now = self._decoded(place.node, place.key, data, token)
            if now.copy is not None and now.copy.revision >= copy.revision:
                return
            place.token = now.token
            entries = merge([now, _Place(place.node, place.key, None, None, decode(copy.payload))])
            copy = Copy(Kind.SESSION, copy.revision, copy.written_at, copy.expires_at,
                        encode(entries))

    def _pack(self, copy: Copy) -> bytes:
        return pack(copy, self.config.signing_keys[0], self.config.compress_min_size)


def _reads(places: list[tuple[Node, str]]) -> list[Call]:
    """The read of every place of a user's index, as ``NodeRegistry.send_many`` takes them."""
    return [(node, "get_versioned", (key,)) for node, key in places]
