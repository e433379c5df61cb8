"""Where a session lives, as this app instance sees it: the facts the demo page shows.

Only reads what the engine already knows (the key format, the node registry and its health
view); it sends nothing to any node, so rendering the page cannot change what it reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from django_msm.core import keys as msm_keys
from django_msm.core.health import NodeState
from django_msm.core.nodes import Node
from django_msm.core.registry import NodeRegistry
from django_msm.runtime import get_registry


@dataclass(frozen=True)
class NodeView:
    """One node as this instance's health view has it."""

    id: str
    state: str
    last_error: str


@dataclass(frozen=True)
class Placement:
    """The session key of this response and the nodes holding its copies."""

    key: str | None
    primary: str | None
    backup: str | None
    nodes: tuple[NodeView, ...]


def _backup_of(registry: NodeRegistry, primary: Node) -> str | None:
    """The first backup node that is up, which is where writers put the backup copy.

    ``NodeHealth.available()`` is not used: it hands out the probe of a quarantined node, and a
    page that consumed it would keep the session's own write from ever trying the node again.
    """
    for node in registry.backup_nodes(primary):
        if registry.health[node].state is NodeState.UP:
            return node.label
    return None


def describe(session_key: str | None) -> Placement:
    """Return the placement of ``session_key`` (None or a foreign key gives no nodes)."""
    registry = get_registry()
    nodes = tuple(
        NodeView(node.label, registry.health[node].state.value, registry.health[node].last_error)
        for node in registry.nodes
    )
    sid = msm_keys.parse(session_key)
    primary = registry.node_for(sid) if sid is not None else None
    if primary is None:
        return Placement(session_key, None, None, nodes)
    return Placement(session_key, primary.label, _backup_of(registry, primary), nodes)
