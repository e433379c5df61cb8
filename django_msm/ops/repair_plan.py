"""What repair decides for one session key, from the copies it read (pure: no I/O here).

For a key, the *places* are where a copy may be: the primary key on the node the key names,
the backup key on every node of ``NodeRegistry.backup_nodes`` (read order). Two of them are its
*targets*, where the two good copies belong:

* the primary place, and the first reachable node of ``backup_targets`` (draining nodes skipped);
* for a key whose node is retired or unreachable: the first two reachable backup targets, so
  that the session still has two copies while its node is gone.

The *winner* is the newest copy of any place: a tombstone beats every session copy (keys are
never reused), otherwise the highest revision, the primary's copy on a tie (requests write the
primary first). Actions make every target hold the winner and remove the copies elsewhere, and
each is conditional, so a request that writes meanwhile wins: a missing target gets an ``add``,
a stale one a compare-and-set over the version read, an extra copy a compare-and-delete.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from ..core.envelope import Copy
from ..core.keys import KeyLayout, SessionId
from ..core.nodes import Node
from ..core.registry import NodeRegistry


class Place:
    """One place a copy of a key may be: a node and the storage key there. Compared and hashed
    by node label and key (strings): a pass hashes a few places per session."""

    __slots__ = ("node", "key", "_id")

    def __init__(self, node: Node, key: str):
        self.node, self.key = node, key
        self._id = (node.label, key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Place) and self._id == other._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"Place({self.node.label}, {self.key[:4]}...)"  # never a whole session key


@dataclass(frozen=True)
class Found:
    """What a place held: the stored bytes, their version token, the decoded copy (None if it
    could not be decoded: corrupt or signed with a retired secret)."""

    data: bytes
    token: bytes
    copy: Copy | None


@dataclass(frozen=True)
class Layout:
    """The places of one key: targets first, then the other places readers look at."""

    sid: SessionId
    targets: tuple[Place, ...]
    others: tuple[Place, ...]
    unreadable: bool  # some place is on a node the pass cannot reach

    @property
    def places(self) -> tuple[Place, ...]:
        return self.targets + self.others


def layout(registry: NodeRegistry, keys: KeyLayout, sid: SessionId, up: set[Node]) -> Layout:
    """Where ``sid``'s copies may be and where its two good copies belong."""
    primary = registry.node_for(sid)
    assert primary is not None
    backup = keys.backup(sid)
    reads = [Place(primary, keys.primary(sid))] if not registry.is_retired(primary) else []
    reads += [Place(node, backup) for node in registry.backup_nodes(primary)]
    spare = [Place(n, backup) for n in registry.backup_targets(primary) if n in up]
    if primary in up:
        targets = [reads[0], *spare[:1]]
    else:
        targets = spare[:2]
    others = [place for place in reads if place not in targets and place.node in up]
    unreadable = any(place.node not in up for place in reads)
    return Layout(sid, tuple(targets), tuple(others), unreadable)


def winner(found: dict[Place, Found], places: tuple[Place, ...]) -> Place | None:
    """The place holding the newest copy (see the module docstring), or None if none."""
    best: Place | None = None
    for place in places:  # targets first: the primary wins a tie
        copy = found[place].copy if place in found else None
        if copy is None:
            continue
        current = found[best].copy if best is not None else None
        if current is None or _newer(copy, current):
            best = place
    return best


def _newer(candidate: Copy, best: Copy) -> bool:
    if candidate.is_tombstone != best.is_tombstone:
        return candidate.is_tombstone
    return candidate.revision > best.revision


def same(a: Copy, b: Copy) -> bool:
    """Whether a place already holds the winner: any tombstone for a tombstone, else the same
    revision with the same content."""
    if a.is_tombstone or b.is_tombstone:
        return a.is_tombstone and b.is_tombstone
    return (a.revision, a.payload) == (b.revision, b.payload)


class Do(enum.Enum):
    ADD = "add"  # the target holds nothing: add the winner
    REPLACE = "replace"  # the target holds an older copy: compare-and-set the winner over it
    REMOVE = "remove"  # a copy outside the targets: compare-and-delete it


@dataclass(frozen=True)
class Action:
    do: Do
    place: Place
    token: bytes | None = None  # the version read (REPLACE, REMOVE)


def actions(lay: Layout, found: dict[Place, Found], best: Place) -> list[Action]:
    """What makes both targets hold the winner and leaves no copy elsewhere.

    Copies outside the targets are removed only when both targets exist and the key's every
    place could be read: a copy is never removed while it may be the last one.
    """
    top = found[best].copy
    assert top is not None
    todo = []
    for place in lay.targets:
        held = found.get(place)
        if held is None:
            todo.append(Action(Do.ADD, place))
        elif held.copy is None or not same(held.copy, top):
            todo.append(Action(Do.REPLACE, place, held.token))
    if len(lay.targets) == 2 and not lay.unreadable:
        todo += [Action(Do.REMOVE, place, found[place].token)
                 for place in lay.others if place in found]
    return todo


@dataclass
class RepairReport:
    """What a pass found and did, per node id (the node a key names, or the node holding a
    copy for ``stale``). A dry run fills the same figures and writes nothing."""

    dry_run: bool = False
    sessions: int = 0  # live session keys examined
    tombstones: int = 0  # retired keys examined
    two_copies: Counter[str] = field(default_factory=Counter)  # sessions with both targets good
    one_copy: Counter[str] = field(default_factory=Counter)  # ... with one good copy before
    stale: Counter[str] = field(default_factory=Counter)  # older copies, by holding node
    extra: int = 0  # copies outside the two targets (the node order changed, or a fallback)
    bytes: Counter[str] = field(default_factory=Counter)  # key + value bytes, by holding node
    restored: int = 0  # copies added where one was missing
    replaced: int = 0  # stale copies overwritten
    removed: int = 0  # copies removed outside the targets
    raced: int = 0  # conditional writes a request won (it wrote meanwhile)
    undone: int = 0  # restores taken back: the source changed before it was confirmed
    failed: int = 0  # sessions left with one copy: a write failed or too few nodes are up
    unreachable: list[str] = field(default_factory=list)  # nodes that could not be repaired
    scanned: list[str] = field(default_factory=list)  # nodes whose keys were walked
    seconds: float = 0.0

    @property
    def single(self) -> int:
        return sum(self.one_copy.values())

    @property
    def complete(self) -> bool:
        """Every live session has two good copies and no stale copy is left (a dry run: was
        found so), and every node could be read."""
        left = self.single + sum(self.stale.values()) if self.dry_run else self.failed
        return not self.unreachable and left == 0

    def to_dict(self) -> dict[str, object]:
        """The ``--json`` document of ``msm_repair`` (docs/operations.md)."""
        return {
            "dry_run": self.dry_run, "complete": self.complete, "seconds": round(self.seconds, 3),
            "sessions": self.sessions, "tombstones": self.tombstones,
            "two_copies": sum(self.two_copies.values()), "one_copy": self.single,
            "stale": sum(self.stale.values()), "extra": self.extra,
            "restored": self.restored, "replaced": self.replaced, "removed": self.removed,
            "raced": self.raced, "undone": self.undone, "failed": self.failed,
            "unreachable": sorted(self.unreachable), "scanned": self.scanned,
            "nodes": {
                node: {"two_copies": self.two_copies[node], "one_copy": self.one_copy[node],
                       "stale": self.stale[node], "bytes": self.bytes[node]}
                for node in sorted(set(self.two_copies) | set(self.one_copy) | set(self.stale)
                                   | set(self.bytes))
            },
        }
