"""AwayMarks: what every process knows about nodes that were away, shared through the nodes.

A deletion (logout, rotation, relocation) that cannot reach a node leaves tombstones on the
nodes it can reach. A process that saw the node go away knows to check that node's copies
against their other places until a repair pass has reconciled it (``NodeHealth.suspect``). A
process that did not (another app server, or one started after the outage) needs to be told: so
the process that sees a node fail writes a fresh random token ``msm:away:<prefix><node>`` to
the other nodes. Every process reads the marks (``core.repairstate``: away tokens, node
generations, the last repair pass's state record) when its cluster is built and then at most
every ``REFRESH_INTERVAL`` seconds, on the read path, with no thread; a node with a token that
no repair pass covered is suspect. What the marks say is also where automatic repair learns
that a pass is due (``ClusterEvents.repair_needed``).

Tokens, not times: whether a copy predates an outage never depends on app hosts' clocks.
"""

from __future__ import annotations

import logging
import secrets
import threading

from ..clock import Clock
from ..exceptions import NodeUnavailable
from .config import MsmConfig
from .health import NodeState
from .keys import KeyLayout
from .nodes import Node
from .registry import NodeRegistry
from .repairstate import RepairState, Survey, topology

logger = logging.getLogger(__name__)
REFRESH_INTERVAL = 5.0


class AwayMarks:
    """Publish and read the away marks, generations and repair state of a registry's nodes."""

    def __init__(self, registry: NodeRegistry, keys: KeyLayout, clock: Clock, lifetime: int):
        self.registry = registry
        self.keys = keys
        self.clock = clock
        # A mark must outlive every copy it casts doubt on: the longest session, at least a day.
        self.ttl = max(int(lifetime), 86_400)
        self.topology: tuple[str, ...] = ()  # set by the cluster (core.repairstate.topology)
        self.retiring = False
        self.local: dict[Node, str] = {}  # tokens this process published, until superseded
        self.gens: dict[str, str] = {}  # the generation last seen on each node
        self.restarted: set[str] = set()  # nodes seen to come back empty, until a pass covers
        self.last: Survey | None = None
        self._next_refresh = 0.0  # due at once: a new process reads the marks first
        self._lock = threading.Lock()

    def configure(self, config: MsmConfig) -> None:
        """Take the node list a repair pass reconciles from the config."""
        self.topology = topology(config)
        self.retiring = bool(config.retired)

    def key(self, node: Node) -> str:
        return self.keys.away(node.label)

    def publish(self, away: Node) -> None:
        """Tell the other nodes that ``away`` failed now (a failure path; no health updates)."""
        token = secrets.token_hex(8)
        self.local[away] = token
        value, ttl = token.encode(), self.ttl
        for node in self.registry.nodes:
            if node is away or not self.registry.health[node].probe_due():
                continue
            try:
                self.registry.stores[node].set(self.key(away), value, ttl)
            except NodeUnavailable:
                continue

    def refresh_if_due(self) -> None:
        """Read the marks if the interval has passed; one caller at a time does it."""
        now = self.clock.monotonic()
        if len(self.registry.nodes) < 2:  # one node: no second copy, nothing to doubt
            return
        if now < self._next_refresh or not self._lock.acquire(blocking=False):
            return
        try:
            self._next_refresh = now + REFRESH_INTERVAL
            self.survey()
        finally:
            self._lock.release()

    def refresh_once(self) -> None:
        """Read the marks if this process never has (its first new session): generations get
        written before a node can restart unseen."""
        if self.last is None:
            self.refresh_if_due()

    def survey(self, notify: bool = True) -> Survey:
        """Read every node's marks, update the health views, tell if a pass is due (unless
        ``notify`` is False: automatic repair's own survey)."""
        nodes = self.registry.nodes
        reachable: set[str] = set()
        gens: dict[str, str] = {}
        fresh: set[str] = set()
        seen: dict[str, set[str]] = {str(node.id): set() for node in nodes}
        states: list[RepairState] = []
        for holder in nodes:
            try:
                gen, created = self._generation(holder)
                state = RepairState.decode(self._get(holder, self.keys.repair("state")))
                for node in nodes:
                    if node is not holder and (token := self._get(holder, self.key(node))):
                        seen[str(node.id)].add(token.decode("ascii", "replace"))
            except NodeUnavailable:
                continue
            reachable.add(str(holder.id))
            gens[str(holder.id)] = gen
            fresh.update([str(holder.id)] if created else [])
            states.extend([state] if state is not None else [])
        away = {node_id: frozenset(tokens) for node_id, tokens in seen.items()}
        away.update(self._local_tokens(away))
        state = max(states, key=lambda s: s.seq, default=None)
        survey = Survey(self.topology, frozenset(reachable), gens, frozenset(fresh), away,
                        state, dict(self.gens), self.retiring, frozenset(self.restarted))
        self._apply(survey, notify)
        return survey

    def _get(self, node: Node, key: str) -> bytes | None:
        # through the registry: a hung holder costs one timeout, then it is skipped
        return self.registry.call(node, lambda store: store.get(key))

    def _generation(self, node: Node) -> tuple[str, bool]:
        """The node's generation, created if it has none (it lost its data, or is new)."""
        key = self.keys.generation()
        value = self._get(node, key)
        if value is not None:
            return value.decode("ascii", "replace"), False
        token = secrets.token_hex(8)
        if self.registry.call(node, lambda store: store.add(key, token.encode(), self.ttl)):
            return token, True
        value = self._get(node, key)  # another process created it first
        return (value or b"").decode("ascii", "replace"), True

    def _local_tokens(self, away: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        """Tokens this process published that no holder shows (the publish did not land)."""
        found = {}
        for node, token in list(self.local.items()):
            shown = away.get(str(node.id), frozenset())
            if shown and token not in shown:
                del self.local[node]  # superseded by another process's later token
            elif not shown:
                found[str(node.id)] = frozenset({token})
        return found

    def _apply(self, survey: Survey, notify: bool) -> None:
        for node in self.registry.nodes:
            health = self.registry.health[node]
            node_id = str(node.id)
            health.unrepaired = survey.uncovered(node_id) or health.state is not NodeState.UP
            if survey.restarted(node_id):
                self.restarted.add(node_id)
            elif survey.state is not None:
                self.restarted.discard(node_id)
            if node_id in survey.gens:
                self.gens[node_id] = survey.gens[node_id]
        self.last = survey
        reasons = survey.needs_repair() if notify else []
        if reasons:
            self.registry.events.repair_needed("; ".join(reasons))
