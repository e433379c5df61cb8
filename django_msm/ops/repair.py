"""Repair (anti-entropy): a pass that gives every session key two good copies again.

``RepairPass`` walks every node's session keys in batches (``inspectors``: memcached's
``lru_crawler metadump``, Redis ``SCAN``), reads every place of each key in one batched read
per node, and applies what ``repair_plan`` decides, with ``add``, compare-and-set and
compare-and-delete only: a request that writes a session meanwhile always wins.

* Streaming, flat memory: one batch of keys and their copies at a time.
* Bounded rate: at most ``rate`` sessions examined per second (``REPAIR_RATE``).
* Once per key: a backup copy found on one node is handled where its primary copy lives (a
  batched read checks that it does), and nodes are walked emptiest first, so each key is
  examined about once per pass (a session whose primary copy the pass restored on a node it
  walks later is examined twice: ``sessions`` counts it twice, ``restored`` once).
* Never a resurrection: a copy restored from another place is confirmed afterwards
  (``repair_apply``): if that place changed meanwhile (a logout deleted it), the restored copy
  is taken back by compare-and-delete. A tombstone anywhere wins over every session copy.
* Resumable: ``on_batch`` is told where the walk is (node, cursor) after each batch and may
  stop it; ``resume`` skips what an earlier pass finished (``ops.autorepair`` keeps both).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..core.cluster import Cluster
from ..core.envelope import Copy, unpack
from ..core.keys import BACKUP_PREFIX, SessionId, parse
from ..core.nodes import Node
from ..exceptions import CorruptCopy, NodeUnavailable
from ..stores import Store
from .inspectors import CountError, KeyBatch, inspector_for
from .repair_apply import BatchWriter
from .repair_plan import Action, Do, Found, Layout, Place, RepairReport, actions, layout, winner

logger = logging.getLogger(__name__)
Walk = Callable[[Store, str, float, "str | None"], Iterator[KeyBatch]]
OnBatch = Callable[[str, "str | None", RepairReport], bool]


@dataclass(frozen=True)
class Resume:
    """Where an interrupted pass stopped: nodes it finished, and the cursor in the next one."""

    done: frozenset[str] = frozenset()
    node: str | None = None
    cursor: str | None = None


@dataclass
class _Batch:
    """One batch of keys being handled: their layouts and what their places hold."""

    layouts: list[Layout] = field(default_factory=list)
    found: dict[Place, Found] = field(default_factory=dict)


def probed_items(store: Store, timeout: float) -> int:
    """How many items the node holds, by its inspector's probe (0 if it does not say)."""
    return inspector_for(store.node).probe(store, timeout).items or 0


def default_walk(store: Store, prefix: str, timeout: float, cursor: str | None
                 ) -> Iterator[KeyBatch]:
    walk = inspector_for(store.node).keys
    if walk is None:
        raise CountError(f"{store.node.kind.value} nodes cannot be walked")
    return walk(store, prefix, timeout, cursor)


class RepairPass:
    """One pass over the cluster (or one node of it, ``only``)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        rate: int | None = None,
        dry_run: bool = False,
        only: str | None = None,
        walk: Walk = default_walk,
        items: Callable[[Store, float], int] = probed_items,
        on_batch: OnBatch | None = None,
        resume: Resume | None = None,
    ):
        self.cluster = cluster
        self.registry = cluster.registry
        self.keys = cluster.keys
        self.rate = cluster.config.repair_rate if rate is None else rate  # 0: unbounded
        self.only = only
        self.walk = walk
        self.items = items
        self.on_batch = on_batch or (lambda node, cursor, report: True)
        self.resume = resume or Resume()
        self.report = RepairReport(dry_run=dry_run)
        self.up: set[Node] = set()
        self._examined = 0
        self._started = 0.0

    # -- the walk -------------------------------------------------------------------------------
    def run(self) -> RepairReport:
        """Walk the nodes, repair what is found, return what was found and done."""
        self._started = time.monotonic()
        self.up = {node for node in self.registry.nodes if self._answers(node)}
        self.report.unreachable = [str(n.id) for n in self.registry.nodes if n not in self.up]
        for node in self._order():
            if self.only is not None and node.id != self.only:
                continue
            if str(node.id) in self.resume.done:
                self.report.scanned.append(str(node.id))
                continue
            if not self._walk_node(node):
                break
        self.report.seconds = time.monotonic() - self._started
        return self.report

    def _order(self) -> list[Node]:
        """The reachable nodes, fewest items first: a node that came back empty is walked
        before the copies restored onto it, so they are not examined a second time."""
        up = [node for node in self.registry.nodes if node in self.up]
        return sorted(up, key=lambda node: self.items(self.registry.stores[node],
                                                       self.cluster.config.operation_timeout))

    def _answers(self, node: Node) -> bool:
        """Whether the node answers now. Asked twice: the first ping may meet a connection a
        restart left dead (the adapter drops it), which says nothing about the node now."""
        if self.registry.is_retired(node):
            return False
        for _ in range(2):
            try:
                self.registry.stores[node].ping()
            except NodeUnavailable:
                continue
            self.registry.health[node].record_success()
            return True
        return False

    def _walk_node(self, node: Node) -> bool:
        """Repair what ``node`` holds; False if ``on_batch`` stopped the pass."""
        cursor = self.resume.cursor if self.resume.node == node.id else None
        store, config = self.registry.stores[node], self.cluster.config
        try:
            for batch in self.walk(store, config.storage_prefix, config.operation_timeout, cursor):
                self._pace(self._batch(node, batch.keys))
                if not self.on_batch(str(node.id), batch.cursor, self.report):
                    return False
        except (CountError, NodeUnavailable) as exc:
            logger.warning("repair could not walk node %s: %s", node.label, exc)
            self._lost(node)
            return True
        self.report.scanned.append(str(node.id))
        return True

    def _pace(self, examined: int) -> None:
        """Keep to ``rate`` sessions examined per second over the whole pass (a backup copy
        whose primary copy is found elsewhere costs one batched read, and no pace)."""
        self._examined += examined
        if self.rate:
            ahead = self._started + self._examined / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _lost(self, node: Node) -> None:
        self.up.discard(node)
        if str(node.id) not in self.report.unreachable:
            self.report.unreachable.append(str(node.id))

    # -- one batch --------------------------------------------------------------------------------
    def _batch(self, scanned: Node, keys: list[str]) -> int:
        """Repair the keys of one walked batch; return how many sessions were examined."""
        sids = self._owned(scanned, keys)
        batch = _Batch([layout(self.registry, self.keys, sid, self.up) for sid in sids])
        wanted: dict[Node, set[str]] = {}
        for lay in batch.layouts:
            for place in lay.places:
                wanted.setdefault(place.node, set()).add(place.key)
        for node, wanted_keys in wanted.items():
            batch.found.update(self._read(node, sorted(wanted_keys)))
        writer = BatchWriter(self.registry, self.report, self._lost)
        for lay in batch.layouts:
            self._settle(lay, batch.found, writer)
        writer.flush()
        return len(batch.layouts)

    def _owned(self, scanned: Node, keys: list[str]) -> list[SessionId]:
        """The keys this node's walk handles: its primary copies, and backup copies whose
        primary copy is not where another node's walk of this pass will find it."""
        primaries, backups = [], []
        prefix = self.keys.prefix
        for key in keys:
            backup = key.startswith(BACKUP_PREFIX)
            sid = parse(key[len(BACKUP_PREFIX) * backup + len(prefix):])
            node = None if sid is None else self.registry.node_for(sid)
            if sid is None or node is None:
                continue  # a key no configuration names: never handled
            if not backup and node is scanned:
                primaries.append(sid)
            elif backup:
                backups.append((sid, node))
        checked: dict[Node, list[SessionId]] = {}
        for sid, node in backups:
            if self.only is None and node in self.up and not self.registry.is_retired(node):
                checked.setdefault(node, []).append(sid)
            else:
                primaries.append(sid)
        for node, group in checked.items():
            present = self._read(node, [self.keys.primary(sid) for sid in group])
            primaries += [sid for sid in group if Place(node, self.keys.primary(sid)) not in
                          present]
        return primaries

    def _read(self, node: Node, keys: list[str]) -> dict[Place, Found]:
        """One batched read of ``keys`` on ``node``; a node that fails is left out of the pass."""
        if node not in self.up:
            return {}
        try:
            held = self.registry.call(node, lambda store: store.get_many_versioned(keys))
        except NodeUnavailable:
            self._lost(node)
            return {}
        return {Place(node, k): Found(v, t, self._decode(v)) for k, (v, t) in held.items()}

    def _decode(self, data: bytes) -> Copy | None:
        try:
            return unpack(data, self.cluster.config.signing_keys)
        except CorruptCopy:
            return None

    # -- one key ----------------------------------------------------------------------------------
    def _settle(self, lay: Layout, found: dict[Place, Found], writer: BatchWriter) -> None:
        best = winner(found, lay.places)
        top = None if best is None else found[best].copy
        if best is None or top is None:
            return
        ttl = int(top.expires_at - self.cluster.clock.time())  # a lifetime, not an ordering
        if ttl <= 0:
            return
        todo = actions(lay, found, best)
        self._count(lay, found, top.is_tombstone, str(lay.sid.node_id), todo)
        if self.report.dry_run:
            return
        source = found[best]
        if not writer.apply(todo, source.data, ttl, best, source.token, not top.is_tombstone):
            self.report.failed += 1
        elif len(lay.targets) < 2 and not top.is_tombstone:
            self.report.failed += 1

    def _count(self, lay: Layout, found: dict[Place, Found], tombstone: bool, named: str,
               todo: list[Action]) -> None:
        report = self.report
        if tombstone:
            report.tombstones += 1
        else:
            report.sessions += 1
            good = len(lay.targets) - sum(1 for a in todo if a.do is not Do.REMOVE)
            (report.two_copies if good >= 2 else report.one_copy)[named] += 1
        for place in lay.places:
            if place in found:
                report.bytes[str(place.node.id)] += len(place.key) + len(found[place].data)
        for action in todo:
            if action.do is Do.REPLACE:
                report.stale[str(action.place.node.id)] += 1
            elif action.do is Do.REMOVE:
                report.extra += 1
