"""What a run counts, from what the simulated users saw and what the final check found.

Pure functions over plain records, so the definitions are testable on small inputs:

* a **session** is one acknowledged login, until the user's own acknowledged logout (a user who
  is logged out by the system logs in again: a new session);
* **lost**: a session the user did not log out that the final check cannot read, with the last
  key the user was given, from every app instance (data destroyed or out of an instance's reach,
  not just a cookie dropped);
* **logged out**: a session whose user saw themselves logged out without asking (a reply said
  "not logged in", or deleted the cookie), whatever became of the data;
* **updates lost**: in sessions that are not lost, updates acknowledged with 200 whose ids the
  final check does not find (a lost session's updates count under "lost");
* **resurrected**: a session whose logout was acknowledged, readable again by the final check
  under any key it ever had;
* 4xx/5xx: replies with those statuses (a 400 is Django's ``SessionInterrupted``: the session
  vanished between load and save); *no answer*: refused, reset or timed out;
* latency: every request, by when it was sent: *during* (first fault to last mend) or *after*
  (everything, in a run without faults).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class SessionRecord:
    """One session, as its simulated user saw it."""

    user: str
    keys: list[str]  # every key the user was given, in order of arrival
    started: float
    acked: set[str] = field(default_factory=set)  # ids of updates acknowledged with 200
    logout_at: float | None = None  # the user's own logout, acknowledged
    logout_tried: bool = False  # a logout without acknowledgement (it may have happened)
    kicked_at: float | None = None  # first time the user saw themselves logged out
    crossed: int = 0  # replies naming another user: must never happen
    trace: list[str] = field(default_factory=list)  # the user's requests, for the evidence


@dataclass(frozen=True)
class Verdict:
    """What the final check found for one session."""

    seen: bool = False  # every app instance served the session's user
    found: frozenset[str] = frozenset()  # update ids every instance found
    resurrected: bool = False  # (logged-out sessions) some instance served it again


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started, when the request was sent
    latency: float
    status: int  # 0: no HTTP answer


@dataclass(frozen=True)
class Outcome:
    sessions: int
    lost: int
    logged_out: int
    updates: int
    updates_lost: int
    logouts: int
    logouts_in_fault: int
    resurrected: int
    requests: int
    errors_4xx: int
    errors_5xx: int
    no_answer: int
    crossed: int
    latency: Mapping[str, tuple[float | None, float | None]]  # phase → (p50, p99) seconds

    @property
    def msm_clean(self) -> bool:
        """The figures django_msm must keep at zero."""
        return self.lost == 0 and self.updates_lost == 0 and self.resurrected == 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def phase(at: float, window: tuple[float, float] | None) -> str:
    """``before``, ``during`` or ``after`` the fault window (first fault, last mend); with no
    fault at all, everything is ``after``: a healthy cluster."""
    if window is None:
        return "after"
    if at < window[0]:
        return "before"
    return "during" if at < window[1] else "after"


def latencies(
    samples: Iterable[Sample], window: tuple[float, float] | None
) -> dict[str, tuple[float | None, float | None]]:
    """p50 and p99 of answered requests, per phase."""
    by_phase: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for sample in samples:
        if sample.status:
            by_phase[phase(sample.at, window)].append(sample.latency)
    return {name: (percentile(v, 50), percentile(v, 99)) for name, v in by_phase.items()}


def _is_active(record: SessionRecord) -> bool:
    return record.logout_at is None and not record.logout_tried


def account(
    records: Sequence[SessionRecord],
    verdicts: Mapping[str, Verdict],
    samples: Sequence[Sample],
    window: tuple[float, float] | None,
) -> Outcome:
    """Count one run. Every record needs a verdict (keyed by user)."""
    active = [r for r in records if _is_active(r)]
    lost = [r for r in active if not verdicts[r.user].seen]
    kept = [r for r in active if verdicts[r.user].seen]
    logged_out = [r for r in records if r.logout_at is not None]
    return Outcome(
        sessions=len(records),
        lost=len(lost),
        logged_out=sum(1 for r in records if r.kicked_at is not None),
        updates=sum(len(r.acked) for r in records),
        updates_lost=sum(len(r.acked - verdicts[r.user].found) for r in kept),
        logouts=len(logged_out),
        logouts_in_fault=sum(1 for r in logged_out if phase(r.logout_at or 0, window) == "during"),
        resurrected=sum(1 for r in logged_out if verdicts[r.user].resurrected),
        requests=len(samples),
        errors_4xx=sum(1 for s in samples if 400 <= s.status < 500),
        errors_5xx=sum(1 for s in samples if s.status >= 500),
        no_answer=sum(1 for s in samples if s.status == 0),
        crossed=sum(r.crossed for r in records),
        latency=latencies(samples, window),
    )
