"""What repair knows: the state record of the last pass, and a survey of the nodes now.

Nothing here compares wall clocks of different hosts. Three kinds of marks live on the nodes
(``KeyLayout``), all opaque random tokens:

* ``msm:gen:<prefix>`` on each node itself: its *generation*. A node that lost its data
  (restarted empty, replaced, moved to an empty server) no longer has it; the first process
  to notice writes a new one (``add``), and every process comparing it with the state record
  sees that the node came back empty.
* ``msm:away:<prefix><node>`` on the *other* nodes: a fresh token each time a process sees
  ``<node>`` fail (``AwayMarks.publish``). Copies on that node may then miss a deletion.
* ``msm:repair:<prefix>state`` on every node: the ``RepairState`` a completed pass wrote, with
  the generations, away tokens and node list it reconciled. A token it does not list is an
  outage no pass has reconciled yet: copies on that node stay suspect (verified on read)
  until one does.

``Survey`` is what one process read of these marks; ``needs_repair`` says why a pass is due.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .config import MsmConfig


def topology(config: MsmConfig) -> tuple[str, ...]:
    """The node list a pass reconciles: ``id=address`` in configured order, then retired ids."""
    listed = tuple(f"{node.id}={node.address}" for node in config.nodes)
    return listed + tuple(f"{node_id}=retired" for node_id in config.retired)


@dataclass(frozen=True)
class RepairState:
    """What the last completed repair pass reconciled (stored as JSON on every node)."""

    seq: int = 0
    topology: tuple[str, ...] = ()
    gens: dict[str, str] = field(default_factory=dict)  # node id -> generation it found
    away: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node id -> tokens covered
    down: tuple[str, ...] = ()  # nodes it could not reach (reconciled around them)

    def encode(self) -> bytes:
        body = {"seq": self.seq, "topology": list(self.topology), "gens": self.gens,
                "away": {k: list(v) for k, v in self.away.items()}, "down": list(self.down)}
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> RepairState | None:
        """The record, or None for a missing or unreadable one."""
        if data is None:
            return None
        try:
            body = json.loads(data)
            return cls(
                int(body["seq"]), tuple(map(str, body["topology"])),
                {str(k): str(v) for k, v in body["gens"].items()},
                {str(k): tuple(map(str, v)) for k, v in body["away"].items()},
                tuple(map(str, body["down"])),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class Survey:
    """The marks as one process read them now. Node ids are the configured ids."""

    topology: tuple[str, ...]
    reachable: frozenset[str]
    gens: dict[str, str]  # reachable node id -> its generation
    fresh: frozenset[str]  # nodes whose generation this process had to create
    away: dict[str, frozenset[str]]  # node id -> away tokens on the other nodes (or local)
    state: RepairState | None
    known_gens: dict[str, str] = field(default_factory=dict)  # what this process saw before
    retiring: bool = False  # RETIRED_NODES is set
    pending: frozenset[str] = frozenset()  # nodes this process saw come back empty earlier

    def uncovered(self, node_id: str) -> bool:
        """True if the node was away since the last pass that reconciled it."""
        covered = set(self.state.away.get(node_id, ())) if self.state else set()
        return bool(self.away.get(node_id, frozenset()) - covered)

    def restarted(self, node_id: str) -> bool:
        """True if the node came back empty (or is new) and no pass reconciled it since."""
        gen = self.gens.get(node_id)
        if gen is None:
            return False
        if self.state is not None and node_id in self.state.gens:
            return self.state.gens[node_id] != gen
        if node_id in self.pending:
            return True
        before = self.known_gens.get(node_id)
        if before is not None:
            return before != gen
        return node_id in self.fresh and bool(set(self.gens) - self.fresh)

    def needs_repair(self) -> list[str]:
        """Why a pass is due (empty: nothing to do). Nodes the last pass could not reach and
        that are still unreachable add no reason: a pass cannot do more for them."""
        reasons = [f"node {n} came back empty or is new" for n in sorted(self.gens)
                   if self.restarted(n)]
        reasons += [f"node {n} was away" for n in sorted(self.reachable) if self.uncovered(n)]
        down = set(self.state.down) if self.state else set()
        reasons += [f"node {n} is back" for n in sorted(self.reachable & down)]
        if self.state is not None and self.state.topology != self.topology:
            reasons.append("the configured nodes changed")
        elif self.state is None and self.retiring:
            reasons.append("nodes were retired")
        return reasons

    @property
    def fingerprint(self) -> tuple[object, ...]:
        """Changes whenever a mark or a node's reachability changes (repair waits for quiet)."""
        away = tuple(sorted((k, tuple(sorted(v))) for k, v in self.away.items()))
        return (tuple(sorted(self.reachable)), tuple(sorted(self.gens.items())), away,
                self.state.seq if self.state else None)
