"""The operator's view of the cluster: what ``msm_status`` renders and ``metrics`` exports.

``collect_status()`` probes every node in parallel (so a down or hung node costs about one
``OPERATION_TIMEOUT``, not one per node), counts the session copies each live node holds, and
reads the statistics app processes published (``publish.py``). The result is a plain frozen
``ClusterStatus``; the derived figures (distinct sessions, backup coverage, warnings) are
computed from it, so renderers and tests can work from a hand-built one.

Counting is by copies: a node's ``sessions`` are the primary copies it holds and its ``backups``
the backup copies. The key of either names the node of the primary, so for every node id ``X``,
``p(X)`` primary copies and ``b(X)`` backup copies are known without keeping any key in memory.
Distinct sessions are ``Σ max(p(X), b(X))`` (a session whose primary was lost still counts
through its backup) and backup coverage is ``Σ min(p(X), b(X)) / Σ p(X)``; both are exact as long
as every backup copy belongs to a primary copy that exists, or one that was lost.

Two looks at a node never share a name, so they cannot seem to contradict each other: ``probe``
is a fresh check made now; ``process_view`` is what this process's own calls last met (``not
used`` when it has made none: a fresh ``msm_status`` process has no view of its own).
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core.cluster import Cluster
from ..core.health import NodeHealth, NodeState
from ..stores import Store
from . import redundancy
from .inspectors import CountError, Counts, Probe, inspector_for
from .publish import Figures, read_published, total
from .repair import RepairPass
from .repair_plan import RepairReport
from .units import plural

SCHEMA_VERSION = 2
MEMORY_WARNING = 0.9
NOT_USED = "not used"


@dataclass(frozen=True)
class NodeStatus:
    """One node as configured, as this process sees it, and as a fresh probe found it."""

    id: str | None
    address: str
    kind: str
    failover: bool
    process_view: str  # what this process's calls met: "up", "quarantined", "dead", "not used"
    probe: Probe  # a fresh check, now
    counts: Counts | None = None  # None: not counted (--no-count, down, or count failed)
    count_error: str = ""

    @property
    def label(self) -> str:
        return self.id if self.id is not None else self.address

    @property
    def role(self) -> str:
        return "failover" if self.failover else "regular"


@dataclass(frozen=True)
class ClusterStatus:
    """Everything ``msm_status`` shows; derived figures are properties."""

    nodes: tuple[NodeStatus, ...]
    instances: tuple[Figures, ...] = ()
    counted: bool = True
    generated_at: float = field(default_factory=time.time)
    redundancy: RepairReport | None = None  # --redundancy: a dry run of repair (redundancy.py)

    @property
    def down(self) -> list[NodeStatus]:
        return [node for node in self.nodes if not node.probe.up]

    @property
    def complete(self) -> bool:
        """True if every node was counted, so session figures are not lower bounds."""
        return self.counted and all(node.counts is not None for node in self.nodes)

    def _by_named_node(self) -> tuple[Counter[str | None], Counter[str | None]]:
        primaries: Counter[str | None] = Counter()
        backups: Counter[str | None] = Counter()
        for node in self.nodes:
            if node.counts is not None:
                primaries.update(node.counts.primaries)
                backups.update(node.counts.backups)
        return primaries, backups

    @property
    def sessions(self) -> int | None:
        """Distinct sessions: the primary copies, plus sessions alive only as a backup."""
        if not self.counted:
            return None
        primaries, backups = self._by_named_node()
        return sum(max(primaries[n], backups[n]) for n in primaries.keys() | backups.keys())

    @property
    def primary_copies(self) -> int | None:
        return sum(self._by_named_node()[0].values()) if self.counted else None

    @property
    def backup_copies(self) -> int | None:
        return sum(self._by_named_node()[1].values()) if self.counted else None

    @property
    def without_backup(self) -> int | None:
        if not self.counted or len(self.nodes) < 2:
            return None
        primaries, backups = self._by_named_node()
        return sum(max(0, primaries[n] - backups[n]) for n in primaries)

    @property
    def backup_coverage(self) -> float | None:
        """Share of primary copies whose backup copy exists (None: nothing to cover)."""
        primaries, backups = self._by_named_node()
        if not self.counted or len(self.nodes) < 2 or not sum(primaries.values()):
            return None
        covered = sum(min(primaries[n], backups[n]) for n in primaries)
        return covered / sum(primaries.values())

    @property
    def statistics(self) -> Figures:
        return total(self.instances)

    def statistics_age(self, figures: Figures) -> float | None:
        """Seconds between an instance's publishing and this report (None: not known)."""
        if figures.published_at is None:
            return None
        return max(0.0, self.generated_at - figures.published_at)

    def named_counts(self) -> tuple[Counter[str | None], Counter[str | None]]:
        """Primary and backup copies over all counted nodes, by the node id their keys name."""
        return self._by_named_node()

    @property
    def warnings(self) -> list[str]:
        """What an operator acts on, most urgent first."""
        found = _node_warnings(self) + _session_warnings(self) + _capacity_warnings(self)
        return found + redundancy.warnings(self)


def _node_warnings(status: ClusterStatus) -> list[str]:
    found = [f"node {n.label} ({n.address}) is down: {n.probe.error}" for n in status.down]
    found += [
        f"node {n.label}: sessions not counted: {n.count_error}"
        for n in status.nodes
        if n.probe.up and n.count_error
    ]
    return found


def _session_warnings(status: ClusterStatus) -> list[str]:
    if not status.counted:
        return []
    primaries, backups = status._by_named_node()
    found = [
        f"{plural(backups[n.id], 'session')} of node {n.label} "
        f"{'is' if backups[n.id] == 1 else 'are'} served from a backup copy"
        for n in status.down
        if backups[n.id]
    ]
    missing = status.without_backup
    if missing:
        found.append(f"{plural(missing, 'session has', 'sessions have')} no backup copy")
    return found


def _capacity_warnings(status: ClusterStatus) -> list[str]:
    found = []
    for node in status.nodes:
        probe = node.probe
        if probe.evictions:
            found.append(
                f"node {node.label} evicted {plural(probe.evictions, 'item')}: sessions may have "
                "been lost; give it more memory"
            )
        if probe.memory_used is not None and probe.memory_limit:
            share = probe.memory_used / probe.memory_limit
            if share >= MEMORY_WARNING:
                found.append(f"node {node.label} memory is {share:.0%} full")
    return found


# -- collecting -------------------------------------------------------------------------------
def _process_view(health: NodeHealth) -> str:
    if health.dead:
        return "dead"
    if health.state is NodeState.QUARANTINED:
        return "quarantined"
    return "up" if health.contacted else NOT_USED


def _probe(store: Store, timeout: float) -> Probe:
    return inspector_for(store.node).probe(store, timeout)


def _count(store: Store, prefix: str, timeout: float) -> tuple[Counts | None, str]:
    count = inspector_for(store.node).count
    if count is None:
        return None, f"{store.node.kind.value} nodes cannot be counted"
    try:
        return count(store, prefix, timeout), ""
    except CountError as exc:
        return None, str(exc)


def collect_status(
    cluster: Cluster | None = None,
    *,
    count: bool = True,
    statistics: bool = True,
    check_copies: bool = False,
) -> ClusterStatus:
    """Probe, count and read published statistics; every node is handled in parallel.
    ``check_copies``: also read every copy (a dry run of repair) for the redundancy section."""
    if cluster is None:
        from ..runtime import get_cluster  # the process's cluster, built from the settings

        cluster = get_cluster()
    registry = cluster.registry
    timeout = cluster.config.operation_timeout
    prefix = cluster.config.storage_prefix
    nodes = list(registry.nodes)
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        probes = list(pool.map(lambda node: _probe(registry.stores[node], timeout), nodes))
        up = [node for node, probe in zip(nodes, probes, strict=True) if probe.up]
        counted = {}
        if count:
            counts = pool.map(lambda node: _count(registry.stores[node], prefix, timeout), up)
            counted = dict(zip(up, counts, strict=True))
    instances = read_published(cluster, up, time.time()) if statistics else []
    return ClusterStatus(
        nodes=tuple(
            NodeStatus(
                node.id, node.address, node.kind.value, node.failover,
                _process_view(registry.health[node]), probe, *counted.get(node, (None, "")),
            )
            for node, probe in zip(nodes, probes, strict=True)
        ),
        instances=tuple(instances),
        counted=count,
        redundancy=RepairPass(cluster, rate=0, dry_run=True).run() if check_copies else None,
    )


# -- the JSON schema (docs/operations.md) -------------------------------------------------------
def _node_dict(node: NodeStatus) -> dict[str, Any]:
    probe = node.probe
    return {
        "id": node.id, "address": node.address, "kind": node.kind,
        "failover": node.failover, "role": node.role,
        "probe": {
            "up": probe.up, "error": probe.error or None,
            "latency_ms": None if probe.latency_ms is None else round(probe.latency_ms, 3),
            "version": probe.version, "uptime_s": probe.uptime_s,
            "memory_used": probe.memory_used, "memory_limit": probe.memory_limit,
            "items": probe.items, "evictions": probe.evictions,
        },
        "process_view": node.process_view,
        "sessions": None if node.counts is None else node.counts.sessions,
        "backups": None if node.counts is None else node.counts.backup_copies,
        "count_error": node.count_error or None,
    }


def figures_dict(figures: Figures, age: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"instance": figures.instance}
    if figures.published_at is not None:
        body["published_at"] = figures.published_at
    if age is not None:
        body["age_s"] = round(age, 3)
    body["counters"] = dict(sorted(figures.counters.items()))
    body["timings"] = {name: t.summary() for name, t in sorted(figures.timings.items())}
    return body


def to_dict(status: ClusterStatus) -> dict[str, Any]:
    """The stable ``--json`` document (schema version ``SCHEMA_VERSION``)."""
    coverage = status.backup_coverage
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": status.generated_at,
        "nodes": [_node_dict(node) for node in status.nodes],
        "sessions": status.sessions,
        "primary_copies": status.primary_copies,
        "backup_copies": status.backup_copies,
        "backup_coverage": None if coverage is None else round(coverage, 6),
        "complete": status.complete,
        "warnings": status.warnings,
        "statistics": {
            "instances": [figures_dict(f, status.statistics_age(f)) for f in status.instances],
            "total": figures_dict(status.statistics),
        },
        **({} if status.redundancy is None else {"redundancy": redundancy.as_dict(
            status.redundancy)}),
    }
