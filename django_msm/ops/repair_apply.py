"""The writes of a repair pass, a batch at a time: conditional, and restores confirmed.

Every write is conditional (``add``, compare-and-set, compare-and-delete), so a request that
writes meanwhile wins. The adds of a batch go to each node in one round trip; a restored
*session* copy is then confirmed with one batched read per source node: if its source no
longer holds what was read (a logout deleted it, a request moved it), the restored copy is
taken back by compare-and-delete, so nothing comes back to life. The copies outside the targets
are removed only once the restore stood.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import methodcaller

from ..core.nodes import Node
from ..core.registry import NodeRegistry
from ..exceptions import NodeUnavailable
from .repair_plan import Action, Do, Place, RepairReport


@dataclass
class _Restore:
    """One key's writes in the batch: what to add, what it was read from, what to remove."""

    source: Place
    source_token: bytes
    data: bytes
    ttl: int
    confirm: bool  # a session copy: confirm its source before it stands
    adds: list[Place] = field(default_factory=list)
    added: list[tuple[Place, bytes]] = field(default_factory=list)
    removals: list[Action] = field(default_factory=list)
    failed: bool = False


class BatchWriter:
    """Applies a batch's actions; ``flush`` must follow the batch (adds go out per node in one
    round trip, restores are confirmed, then copies outside the targets are removed)."""

    def __init__(self, registry: NodeRegistry, report: RepairReport,
                 lost: Callable[[Node], None]):
        self.registry = registry
        self.report = report
        self.lost = lost
        self.pending: list[_Restore] = []

    def apply(self, todo: list[Action], data: bytes, ttl: int, source: Place,
              source_token: bytes, confirm: bool) -> bool:
        """Queue one key's adds and removals, write its compare-and-sets now; False if a node
        failed (the key keeps what it had)."""
        restore = _Restore(source, source_token, data, ttl, confirm)
        for action in todo:
            if action.do is Do.REMOVE:
                restore.removals.append(action)
            elif action.do is Do.ADD:
                restore.adds.append(action.place)
            else:
                key, read = action.place.key, action.token or b""
                try:
                    done = self.registry.call(action.place.node,
                                              methodcaller("cas", key, data, ttl, read))
                except NodeUnavailable:
                    self.lost(action.place.node)
                    return False
                self.report.replaced += done is not None
                self.report.raced += done is None
        self.pending.append(restore)
        return True

    def flush(self) -> None:
        """Add, confirm, remove: the second half of every key's writes in this batch."""
        self._add()
        now, unknown = self._sources()
        for restore in self.pending:
            if restore.failed:
                self.report.failed += 1
            elif not (restore.confirm and restore.added):
                self.report.restored += len(restore.added)
                self._remove(restore.removals)
            elif restore.source.node in unknown:
                continue  # left in place: the source may still hold it; the next pass checks
            elif now.get(restore.source) == restore.source_token:
                self.report.restored += len(restore.added)
                self._remove(restore.removals)
            else:
                self._undo(restore)
        self.pending = []

    def _add(self) -> None:
        by_node: dict[Node, list[tuple[_Restore, Place]]] = {}
        for restore in self.pending:
            for place in restore.adds:
                by_node.setdefault(place.node, []).append((restore, place))
        for node, entries in by_node.items():
            items = [(place.key, restore.data, restore.ttl) for restore, place in entries]
            try:
                tokens = self.registry.call(node, methodcaller("add_many_versioned", items))
            except NodeUnavailable:
                self.lost(node)
                for restore, _ in entries:
                    restore.failed = True
                continue
            for (restore, place), token in zip(entries, tokens, strict=True):
                if token is None:
                    self.report.raced += 1  # a request created it meanwhile
                else:
                    restore.added.append((place, token))

    def _sources(self) -> tuple[dict[Place, bytes], set[Node]]:
        """The current versions of the sources of restored session copies (one read a node)."""
        by_node: dict[Node, list[str]] = {}
        for restore in self.pending:
            if restore.confirm and restore.added and not restore.failed:
                by_node.setdefault(restore.source.node, []).append(restore.source.key)
        now: dict[Place, bytes] = {}
        unknown: set[Node] = set()
        for node, keys in by_node.items():
            try:
                held = self.registry.call(node, methodcaller("get_many_versioned", keys))
            except NodeUnavailable:
                self.lost(node)
                unknown.add(node)
                continue
            now.update({Place(node, key): token for key, (_, token) in held.items()})
        return now, unknown

    def _remove(self, removals: list[Action]) -> None:
        for action in removals:
            key, read = action.place.key, action.token or b""
            try:
                gone = self.registry.call(action.place.node,
                                          methodcaller("delete_if", key, read))
            except NodeUnavailable:
                self.lost(action.place.node)
                continue
            self.report.removed += gone
            self.report.raced += not gone

    def _undo(self, restore: _Restore) -> None:
        for place, token in restore.added:
            key = place.key
            try:
                self.registry.call(place.node, methodcaller("delete_if", key, token))
            except NodeUnavailable:
                self.lost(place.node)
                continue
            self.report.undone += 1
