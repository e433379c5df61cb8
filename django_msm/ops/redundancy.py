"""``msm_status --redundancy``: sessions with two good copies, with one, stale copies, bytes.

Counting by key names (``status``) says how many copies exist; whether they are *good* needs
their contents. So this section comes from a dry run of the repair pass (``ops.repair``:
every copy read once, nothing written, no rate limit) and is opt-in: it reads every session
once. Figures are per node: sessions by the node their key names, stale copies and bytes by
the node holding them; evictions are the node's own.
"""

from __future__ import annotations

from typing import Any

from .repair_plan import RepairReport
from .units import plural

# ``status`` below is an ``ops.status.ClusterStatus`` (not imported: status imports this module)
ClusterStatus = Any

HEADER = ["NODE", "TWO COPIES", "ONE COPY", "STALE", "BYTES", "EVICTIONS"]
SIZING = "docs/operations.md, Sizing: every session is stored twice"


def rows(status: ClusterStatus, size: Any) -> list[list[str]]:
    """One row per node and a total row; ``size`` formats bytes."""
    report = status.redundancy
    assert report is not None
    found = []
    for node in status.nodes:
        label = str(node.id)
        evictions = node.probe.evictions
        found.append([node.label, str(report.two_copies[label]), str(report.one_copy[label]),
                      str(report.stale[label]), size(report.bytes[label]),
                      "-" if evictions is None else str(evictions)])
    evicted = sum(node.probe.evictions or 0 for node in status.nodes)
    found.append(["total", str(sum(report.two_copies.values())), str(report.single),
                  str(sum(report.stale.values())), size(sum(report.bytes.values())),
                  str(evicted)])
    return found


def warnings(status: ClusterStatus) -> list[str]:
    """What to do when redundancy is incomplete, or copies are evicted."""
    report = status.redundancy
    if report is None:
        return []
    found = []
    if report.single:
        found.append(f"{plural(report.single, 'session')} with one good copy: run "
                     "`manage.py msm_repair` "
                     "(AUTO_REPAIR does after a fault; if it persists, see its log lines)")
    stale = sum(report.stale.values())
    if stale:
        found.append(f"{plural(stale, 'stale copy', 'stale copies')} (older than a copy or a "
                     "tombstone elsewhere): run "
                     "`manage.py msm_repair`")
    if report.unreachable:
        found.append(f"redundancy not known for copies on {', '.join(report.unreachable)}: "
                     "unreachable")
    if any(node.probe.evictions for node in status.nodes) and report.sessions:
        found.append(f"nodes are evicting: sessions and their backups are dropped for room; "
                     f"give every node memory for its share of both copies ({SIZING})")
    return found


def as_dict(report: RepairReport) -> dict[str, Any]:
    """The ``redundancy`` section of ``msm_status --json --redundancy``."""
    body = report.to_dict()
    return {key: body[key] for key in ("sessions", "tombstones", "two_copies", "one_copy",
                                       "stale", "extra", "unreachable", "nodes", "complete")}
