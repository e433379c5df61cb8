"""Draining a node (``manage.py msm_drain``): move every session off it now.

A node in DRAINING_NODES takes no new sessions and no new backup copies, and a session read
from it moves at once (``MoveReason.DRAIN``). Draining does for idle sessions what their own
next request would: each session whose key names the node is loaded and saved through the
request path (``core.engine.SessionEngine``), so it moves exactly as a request moves it: a new
key on another node with both copies, every copy of the old key retired, and a forward left on
every node it reached, so an old cookie still finds the session (also once the node is retired:
``RETIRED_NODES``). A repair pass then moves the backup copies the node held to their new
places. Requests racing a move behave as two requests of one user do (session locking applies
when LOCKING_MODE asks for it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.cluster import Cluster
from ..core.config import LockingMode
from ..core.engine import SessionEngine
from ..core.keys import BACKUP_PREFIX, SessionId, parse
from ..core.nodes import Node
from ..exceptions import LockTimeout, NodeUnavailable, NoNodesAvailable, SessionDeleted
from .repair import RepairPass, default_walk
from .repair_plan import RepairReport

logger = logging.getLogger(__name__)


@dataclass
class DrainReport:
    """What ``drain`` did: sessions moved, already gone, skipped, and the repair after."""

    node: str
    moved: int = 0
    gone: int = 0  # deleted or moved by a request meanwhile
    busy: int = 0  # locked by a request for longer than the lock wait
    failed: int = 0  # no node took the new copy
    seconds: float = 0.0
    repair: RepairReport | None = None

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "moved": self.moved, "gone": self.gone, "busy": self.busy,
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "repair": None if self.repair is None else self.repair.to_dict()}

    @property
    def complete(self) -> bool:
        return self.busy == 0 and self.failed == 0 and bool(self.repair and
                                                             self.repair.complete)


def _names(keys: list[str], prefix: str, node: Node) -> list[SessionId]:
    """The primary copies among ``keys`` whose key names ``node``."""
    found = []
    for key in keys:
        if key.startswith(BACKUP_PREFIX):
            continue
        sid = parse(key[len(prefix):])
        if sid is not None and sid.node_id == node.id:
            found.append(sid)
    return found


def move(cluster: Cluster, sid: SessionId, report: DrainReport) -> None:
    """Move one session off its draining node through the request path."""
    engine = SessionEngine(cluster, lambda payload: {})
    lock = cluster.config.locking_mode is not LockingMode.NONE
    try:
        outcome = engine.load(str(sid), lock)
        copy = engine.copy
        if outcome.key != str(sid) or copy is None or engine.loaded_payload is None:
            report.gone += 1  # deleted, or a request moved it already
            return
        ttl = max(1, int(copy.expires_at - cluster.clock.time()))
        if engine.save(outcome.key, engine.loaded_payload, ttl, must_create=False,
                       touch=False) != str(sid):
            report.moved += 1
    except LockTimeout:
        report.busy += 1
    except SessionDeleted:
        report.gone += 1
    except (NodeUnavailable, NoNodesAvailable) as exc:
        logger.warning("a session on node %s could not be moved: %s", sid.node_id, exc)
        report.failed += 1
    finally:
        engine.release_lock()


def drain(cluster: Cluster, node_id: str, rate: int | None = None,
          progress: Callable[[DrainReport], None] | None = None) -> DrainReport:
    """Move every session whose key names ``node_id`` off it, then repair (backup copies)."""
    registry = cluster.registry
    node = next(n for n in registry.nodes if n.id == node_id)
    assert node in registry.draining, "only a node in DRAINING_NODES can be drained"
    report, started = DrainReport(node_id), time.monotonic()
    rate = cluster.config.repair_rate if rate is None else rate
    config, done = cluster.config, 0
    walk = default_walk(registry.stores[node], config.storage_prefix, config.operation_timeout,
                        None)
    for batch in walk:
        for sid in _names(batch.keys, cluster.keys.prefix, node):
            move(cluster, sid, report)
            done += 1
            ahead = started + done / rate - time.monotonic() if rate else 0
            if ahead > 0:
                time.sleep(ahead)
        if progress is not None:
            progress(report)
    report.repair = RepairPass(cluster, rate=rate).run()
    report.seconds = time.monotonic() - started
    return report
