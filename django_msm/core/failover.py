"""The failover policy: when a session moves to a new key, and why (msm's relocation).

A session keeps its key while its primary copy is healthy. It moves (new key on a live node,
cookie re-sent at this response, every copy of the old key retired, a forward left behind) for
one of the reasons of ``MoveReason``; ``plan_move`` is the one place that decides it on a load,
and a save whose primary lost the copy decides ``LOST`` itself.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class MoveReason(enum.Enum):
    """Why a session moves to a new key."""

    TAKEOVER = "takeover"  # sticky with ROUTE: another app instance's session came here
    BACKUP = "backup"  # it was served from its backup copy: the primary is gone or away
    FAILOVER = "failover"  # it lives on a failover node while a regular node is back
    LOST = "lost"  # a save found the primary copy gone but the backup alive
    DRAIN = "drain"  # its primary is on a node in DRAINING_NODES (being decommissioned)

    @property
    def optional(self) -> bool:
        """The home answers: a move refused without a forward (another request changed the
        session meanwhile) may wait, and the save stays in place."""
        return self in (MoveReason.TAKEOVER, MoveReason.FAILOVER)


@dataclass(frozen=True)
class Move:
    """A decided move: its reason, and whether this response must carry the new key now."""

    reason: MoveReason
    resend_cookie: bool


def plan_move(
    *,
    own_route: str | None,
    key_route: str | None,
    from_backup: bool,
    relocate_now: bool,
    on_failover_node: bool,
    regular_available: Callable[[], bool],
    on_draining_node: bool = False,
) -> Move | None:
    """Decide whether a loaded session moves, given what the load found.

    A session served from its backup only re-sends its cookie when the load asked for a
    relocation (the primary is dead or empty): a primary that is merely slow keeps the key, so
    one slow reply does not relocate everyone (msm #222/#279); the move then happens at the
    next save, if the session changes. ``regular_available`` may probe nodes, so it is only
    asked for a session on a failover node. A session on a draining node moves at once
    (cookie re-sent), so a node is emptied by its own traffic before ``msm_drain`` runs.
    """
    if own_route is not None and key_route != own_route:
        return Move(MoveReason.TAKEOVER, True)
    if from_backup:
        return Move(MoveReason.BACKUP, relocate_now)
    if on_draining_node:
        return Move(MoveReason.DRAIN, True)
    if on_failover_node and regular_available():
        return Move(MoveReason.FAILOVER, True)
    return None
