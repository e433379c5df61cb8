"""LogThrottle: one warning per node and message per interval, not one per request.

While a node is down, every saving request meets the same trouble ("has no backup copy"); a line
per request buries everything else in the log and says nothing new after the first. The first
record of a (node, message) pair is logged at once; later ones within ``interval`` seconds are
counted, and the next record after the interval carries "(k similar suppressed)". Nothing is
lost: the statistics counters still count every occurrence.

Memory is bounded by the pairs that exist: configured nodes times the message templates of the
code, never anything a request controls (the message is the template, not the formatted line).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..clock import Clock

DEFAULT_INTERVAL = 60.0


@dataclass
class _Seen:
    logged_at: float
    suppressed: int = 0


class LogThrottle:
    """Rate-limit log records per (node, message template); the clock is injectable."""

    def __init__(self, clock: Clock, interval: float = DEFAULT_INTERVAL):
        self.clock = clock
        self.interval = interval
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._lock = threading.Lock()

    def admit(self, node: str, msg: str) -> int | None:
        """None: suppress this record; else log it, noting this many suppressed before it."""
        now = self.clock.monotonic()
        with self._lock:
            seen = self._seen.get((node, msg))
            if seen is not None and now - seen.logged_at < self.interval:
                seen.suppressed += 1
                return None
            self._seen[(node, msg)] = _Seen(now)
            return 0 if seen is None else seen.suppressed

    def log(
        self, logger: logging.Logger, level: int, node: str, msg: str, *args: object
    ) -> bool:
        """Log ``msg % args`` unless a record of the same (node, msg) was logged lately.

        Return True if the record was logged. Whether the level is enabled is asked first, so a
        disabled level costs no lock.
        """
        if not logger.isEnabledFor(level):
            return False
        suppressed = self.admit(node, msg)
        if suppressed is None:
            return False
        if suppressed:
            msg, args = f"{msg} (%d similar suppressed)", (*args, suppressed)
        logger.log(level, msg, *args, stacklevel=2)
        return True

    def session(
        self, logger: logging.Logger, level: int, tag: object, node: str, what: str, *args: object
    ) -> bool:
        """Log "session <tag> (node <node>) <what % args>" about one session: the tag stands for
        its key (``MsmConfig.tag``), which is never logged; throttled per node. ``what`` is a
        constant template: the figures go in ``args``, or every line would count as new."""
        return self.log(logger, level, node, f"session %s (node %s) {what}", tag, node, *args)
