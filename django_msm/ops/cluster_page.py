"""What the admin's cluster page shows: the ``ClusterStatus`` that ``msm_status`` renders.

Plain data, no Django: ``page(status)`` turns one status into rows and bars that the templates
(``django_msm/templates/django_msm/``) lay out without computing anything. The figures are the
ones ``msm_status`` prints, with the same words (``ops.units``).

The distribution picture: one bar per node, its length the copies the node holds (the longest bar
is 100 %), in three parts: primary copies whose backup exists, primary copies without one
(single-copy sessions: one node failure from being lost) and backup copies held for other nodes.
A session's backup copy is found by the node id its key names, so single-copy sessions per node
are ``max(0, p(X) - b(X))``, exact in the same sense as ``ClusterStatus.backup_coverage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .status import ClusterStatus, NodeStatus
from .units import age, duration, latency, plural, size, uptime

REFRESH_SECONDS = 5


@dataclass(frozen=True)
class Segment:
    """One part of a node's bar: ``kind`` is its CSS class (``primary``, ``single``,
    ``backup``); ``width`` its share of the longest bar, in percent."""

    kind: str
    title: str
    count: int
    width: float


@dataclass(frozen=True)
class NodeRow:
    """One node, every cell as text, plus its bar."""

    node: NodeStatus
    probe: str  # "up" / "down": a check made for this page
    latency: str
    memory: str
    memory_share: float | None  # 0-100, for the memory gauge
    uptime: str
    segments: tuple[Segment, ...]
    note: str  # why a node has no bar

    @property
    def label(self) -> str:
        return self.node.label


def _single_copy(status: ClusterStatus) -> dict[str | None, int]:
    """Per node id: primary copies whose backup copy is missing (see the module docstring)."""
    primaries, backups = status.named_counts()
    return {name: max(0, count - backups[name]) for name, count in primaries.items()}


def _segments(node: NodeStatus, single: int, longest: int) -> tuple[Segment, ...]:
    assert node.counts is not None
    held = node.counts.sessions
    single = min(single, held)
    parts = (
        ("primary", "primary copies with a backup", held - single),
        ("single", "single-copy sessions (no backup copy)", single),
        ("backup", "backup copies for other nodes", node.counts.backup_copies),
    )
    return tuple(
        Segment(kind, title, count, 100.0 * count / longest) for kind, title, count in parts
        if count
    )


def _note(node: NodeStatus) -> str:
    if not node.probe.up:
        return "down: its sessions are served from their backup copies on other nodes"
    return f"not counted: {node.count_error}" if node.count_error else "not counted"


def node_rows(status: ClusterStatus) -> list[NodeRow]:
    single = _single_copy(status)
    held = [n.counts.sessions + n.counts.backup_copies for n in status.nodes if n.counts]
    longest = max(held, default=0) or 1
    rows = []
    for node in status.nodes:
        probe = node.probe
        share = None
        if probe.memory_used is not None and probe.memory_limit:
            share = round(100.0 * probe.memory_used / probe.memory_limit, 1)
        memory = "-" if probe.memory_used is None else (
            f"{size(probe.memory_used)} of {size(probe.memory_limit)}"
            if probe.memory_limit else size(probe.memory_used)
        )
        segments = _segments(node, single.get(node.id, 0), longest) if node.counts else ()
        rows.append(NodeRow(
            node, "up" if probe.up else "down", latency(probe.latency_ms), memory, share,
            uptime(probe.uptime_s), segments, "" if node.counts else _note(node),
        ))
    return rows


def summary(status: ClusterStatus) -> list[tuple[str, str]]:
    """The headline figures, as (label, value) pairs."""
    up = sum(node.probe.up for node in status.nodes)
    items = [("Nodes answering", f"{up} of {len(status.nodes)}")]
    if not status.counted:
        return [*items, ("Sessions", "not counted")]
    bound = "" if status.complete else " or more"
    items += [
        ("Sessions", f"{status.sessions}{bound}"),
        ("Primary copies", str(status.primary_copies)),
        ("Backup copies", str(status.backup_copies)),
    ]
    coverage = status.backup_coverage
    items.append(("Backup coverage", "-" if coverage is None else f"{coverage:.1%}"))
    missing = status.without_backup
    items.append(("Single-copy sessions", "-" if missing is None else str(missing)))
    return items


def statistics(status: ClusterStatus) -> dict[str, Any]:
    """Counters (total and per instance) and timings, with how old the figures are."""
    instances = status.instances
    total = status.statistics
    ages = [status.statistics_age(figures) for figures in instances]
    counters = [
        (name, count, [figures.counters.get(name, 0) for figures in instances])
        for name, count in total.counters.items()
    ]
    timings = []
    for name, timing in total.timings.items():
        fmt = size if name.endswith("size") else duration
        percentiles = timing.summary()
        timings.append((name, timing.count, [fmt(percentiles[p]) for p in ("p50", "p95", "p99")]))
    return {
        "heading": plural(len(instances), "instance") if instances else "",
        "instances": [
            (figures.instance, "-" if when is None else f"{age(when)} ago")
            for figures, when in zip(instances, ages, strict=True)
        ],
        "counters": counters,
        "timings": timings,
    }


def page(status: ClusterStatus) -> dict[str, Any]:
    """Everything the template shows."""
    return {
        "nodes": node_rows(status),
        "summary": summary(status),
        "warnings": status.warnings,
        "statistics": statistics(status),
        "generated": datetime.fromtimestamp(status.generated_at, tz=UTC),
        "complete": status.complete,
        "refresh_seconds": REFRESH_SECONDS,
    }
