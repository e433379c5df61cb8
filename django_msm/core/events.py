"""ClusterEvents: what the core tells the layer above it, without importing that layer.

The core does not send Django signals; it calls these methods. ``django_msm.runtime`` passes a
subclass that turns them into the signals of ``django_msm.signals``; tests and tools may pass
their own, or use this one, which does nothing.
"""

from __future__ import annotations

from .failover import MoveReason


class ClusterEvents:
    """No-op listener; override the methods you care about."""

    def node_down(self, node_id: str, error: str) -> None:
        """This process quarantined a node that was up."""

    def node_up(self, node_id: str) -> None:
        """A quarantined node answered again."""

    def session_moved(self, reason: MoveReason, old_key: str, new_key: str) -> None:
        """A session moved to a new key (the response carries the new cookie)."""

    def session_ended(self, user_id: str, session_key: str, reason: str) -> None:
        """A user's session ended: ``logout``, ``end``, ``end_all``, ``password_change`` or
        ``limit`` (USER_SESSIONS_MAX)."""
    def backup_failed(self, node_id: str) -> None:
        """A session of ``node_id`` was stored without its backup copy (no backup node took it)."""

    def repair_needed(self, reason: str) -> None:
        """The marks on the nodes say a repair pass is due (``core.repairstate``): a node came
        back empty, was away, or the configured nodes changed. Called on the read path: a
        listener must only note it and return (automatic repair runs on its own thread)."""
