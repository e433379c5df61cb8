"""Node health: quarantine with hysteresis, probing, and the "rejoined" mark.

* Any error or timeout quarantines a node for ``RETRY_TIMEOUT``: reads and writes skip it, so
  only the first request to meet a hung node waits up to ``OPERATION_TIMEOUT``.
* After ``RETRY_TIMEOUT`` one request is let through as a probe; success brings the node back.
* A node is *dead* only after ``RETRY_ATTEMPTS`` consecutive failures (a refused connection
  counts as all of them: nobody is listening). Sessions are moved off a node only when it is
  dead or when they change, so one slow reply does not relocate everyone (msm #222/#279).
* ``rejoined_at`` (wall clock, informational) is when a quarantined node came back.
* ``unrepaired``: the node was away (as this process saw it, or as the away marks on the nodes
  tell, ``AwayMarks``) and no repair pass has reconciled its copies since. A copy on it may
  predate a deletion that could not reach it, so readers verify it (``suspect``). No wall
  clock is compared: what ends the doubt is a repair pass, not a time.
"""

from __future__ import annotations

import enum
import logging
import threading

from ..clock import Clock
from ..exceptions import NodeUnavailable
from .events import ClusterEvents
from .stats import statistics

logger = logging.getLogger(__name__)


class NodeState(enum.Enum):
    UP = "up"
    QUARANTINED = "quarantined"


class NodeHealth:
    """This process's view of one node. Thread-safe: requests share it."""

    def __init__(
        self,
        label: str,
        retry_timeout: float,
        retry_attempts: int,
        clock: Clock,
        events: ClusterEvents | None = None,
    ):
        self.label = label
        self.events = events or ClusterEvents()
        self.retry_timeout = retry_timeout
        self.retry_attempts = retry_attempts
        self.clock = clock
        self.state = NodeState.UP
        self.failures = 0
        self.last_error = ""
        self.down_since: float | None = None
        self.rejoined_at: float | None = None
        self.contacted = False  # this process had an answer or a failure from the node
        self.unrepaired = False  # away since the last repair pass reconciled it (AwayMarks)
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        """Return True if an operation may be sent now; lets one probe through per interval."""
        if self.state is NodeState.UP:
            return True
        with self._lock:
            now = self.clock.monotonic()
            # Read again under the lock: another thread may have brought the node back.
            if self.state is NodeState.UP or now >= self._retry_at:  # type: ignore[comparison-overlap]
                # This caller probes; the others keep skipping the node meanwhile.
                self._retry_at = now + self.retry_timeout
                return True
            return False

    def probe_due(self) -> bool:
        """True if ``available()`` would let an operation through now (no side effect)."""
        return self.state is NodeState.UP or self.clock.monotonic() >= self._retry_at

    def record_success(self) -> None:
        """Note an answer from the node; a quarantined node is back."""
        self.contacted = True
        if self.state is NodeState.UP and self.failures == 0:
            return
        with self._lock:
            came_back = self.state is NodeState.QUARANTINED
            if came_back:
                self.rejoined_at = self.clock.time()
                logger.warning("node %s is back after %d failure%s", self.label, self.failures,
                               "" if self.failures == 1 else "s")
            self.state = NodeState.UP
            self.failures = 0
        if came_back:
            self.events.node_up(self.label)

    def record_failure(self, error: NodeUnavailable) -> None:
        """Quarantine the node after an error or timeout."""
        statistics.incr("node_errors")
        self.contacted = True
        with self._lock:
            self.failures = max(self.failures + 1, self.retry_attempts if error.refused else 0)
            self.last_error = repr(error.cause)
            went_down = self.state is NodeState.UP
            if went_down:
                self.down_since = self.clock.time()
                logger.warning("node %s quarantined: %r", self.label, error.cause)
            self.state = NodeState.QUARANTINED
            self.unrepaired = True
            self._retry_at = self.clock.monotonic() + self.retry_timeout
        if went_down:
            self.events.node_down(self.label, self.last_error)

    @property
    def dead(self) -> bool:
        """True once failures are many enough to move sessions off the node."""
        return self.state is NodeState.QUARANTINED and self.failures >= self.retry_attempts

    def suspect(self) -> bool:
        """True while copies on this node may be stale: it was away, as this process saw it or
        another process told, and no repair pass has reconciled it since."""
        return self.unrepaired
