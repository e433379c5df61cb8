"""Fault schedules: small declarative files (TOML or JSON) in ``chaos/schedules/``.

A schedule names the node kind its engines use, how long the load runs, how often users log out
(more often while a fault is on, so that revocation under failure is exercised), and its steps::

    name = "kill-node"
    description = "memcached n1 killed mid-run, started again empty"
    nodes = "memcached"           # or "redis"; picks the engines (engines = [...] overrides)
    duration = 22.0               # seconds of load
    fault_logout_rate = 0.2       # per action while a fault is on (default: logout_rate, 0.02)
    node_count = 2                # nodes in the cluster, n1..nN (2 or 3; default 2)
    idle_share = 0.8              # share of users who log in, update once and then wait for the
                                  # final check (default 0: every user keeps acting)
    [[steps]]
    at = 6.0                      # seconds after the load started
    action = "kill"               # kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT), restart
    target = "node:n1"            # node:<id> or app:<name>

Every target a step breaks must be mended (resumed or restarted) by a later step, early enough
for the peers' clients to retry it (``SETTLE``) before the final check.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEDULE_DIR = Path(__file__).resolve().parent / "schedules"
DEFAULT_SCHEDULES = (
    "kill-node", "pause-node", "kill-app", "redis-kill", "combined", "rolling-restart",
)
FAULTS = {"kill": "restart", "pause": "resume"}  # fault → the action that mends it
ACTIONS = frozenset(FAULTS) | frozenset(FAULTS.values())
NODE_KINDS = ("memcached", "redis")
NODE_COUNTS = (2, 3)
APPS = ("app1", "app2")
# Seconds between the last mend and the end of the load: longer than pymemcache's dead_timeout
# (3 s) and django_msm's RETRY_TIMEOUT, so every client has looked at a mended node again.
SETTLE = 4.0


class ScheduleError(ValueError):
    """Raised when a schedule file is not a valid schedule; the message names the file."""


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    target: str

    @property
    def is_fault(self) -> bool:
        return self.action in FAULTS


@dataclass(frozen=True)
class Schedule:
    name: str
    description: str
    nodes: str
    duration: float
    steps: tuple[Step, ...]
    engines: tuple[str, ...] = ()
    logout_rate: float = 0.02
    fault_logout_rate: float = 0.02
    node_count: int = 2
    idle_share: float = 0.0
    source: str = ""

    @property
    def node_ids(self) -> tuple[str, ...]:
        return node_ids(self.node_count)

    @property
    def fault_window(self) -> tuple[float, float]:
        """Nominal (start, end): the first fault and the last mend."""
        faults = [step.at for step in self.steps if step.is_fault]
        mends = [step.at for step in self.steps if not step.is_fault]
        if not faults:
            return (self.duration, self.duration)
        return (min(faults), max(mends))

    def in_fault(self, at: float) -> bool:
        start, end = self.fault_window
        return start <= at < end


def node_ids(count: int) -> tuple[str, ...]:
    """The ids of a cluster of ``count`` nodes, in configured order."""
    return tuple(f"n{number}" for number in range(1, count + 1))


def _steps(
    raw: list[dict[str, Any]], duration: float, node_count: int, where: str
) -> tuple[Step, ...]:
    targets = {"node": node_ids(node_count), "app": APPS}
    steps = []
    for item in raw:
        step = Step(float(item["at"]), str(item["action"]), str(item["target"]))
        kind, _, name = step.target.partition(":")
        if step.action not in ACTIONS:
            raise ScheduleError(f"{where}: unknown action {step.action!r}")
        if name not in targets.get(kind, ()):
            raise ScheduleError(f"{where}: unknown target {step.target!r}")
        if not 0 <= step.at <= duration - SETTLE:
            raise ScheduleError(f"{where}: step at {step.at}s outside 0..duration-{SETTLE:.0f}s")
        steps.append(step)
    return tuple(sorted(steps, key=lambda step: step.at))


def _check_mended(steps: tuple[Step, ...], where: str) -> None:
    """Each fault is followed by its mend on the same target, and nothing is broken twice."""
    broken: dict[str, str] = {}
    for step in steps:
        if step.is_fault:
            if step.target in broken:
                raise ScheduleError(f"{where}: {step.target} is broken twice at {step.at}s")
            broken[step.target] = FAULTS[step.action]
        elif broken.pop(step.target, None) != step.action:
            raise ScheduleError(f"{where}: {step.action} of {step.target} at {step.at}s "
                                "mends nothing")
    if broken:
        raise ScheduleError(f"{where}: never mended: {', '.join(sorted(broken))}")


def parse(raw: dict[str, Any], where: str = "<schedule>") -> Schedule:
    """Build and validate a Schedule from a decoded TOML/JSON document."""
    try:
        duration = float(raw["duration"])
        node_count = int(raw.get("node_count", 2))
        steps = _steps(list(raw.get("steps", [])), duration, node_count, where)
        schedule = Schedule(
            name=str(raw["name"]), description=str(raw["description"]), nodes=str(raw["nodes"]),
            duration=duration, steps=steps, engines=tuple(raw.get("engines", ())),
            logout_rate=float(raw.get("logout_rate", 0.02)),
            fault_logout_rate=float(raw.get("fault_logout_rate", raw.get("logout_rate", 0.02))),
            node_count=node_count, idle_share=float(raw.get("idle_share", 0.0)), source=where,
        )
    except (KeyError, TypeError) as exc:
        raise ScheduleError(f"{where}: missing or malformed field {exc}") from exc
    if schedule.nodes not in NODE_KINDS:
        raise ScheduleError(f"{where}: nodes must be one of {NODE_KINDS}")
    if schedule.node_count not in NODE_COUNTS:
        raise ScheduleError(f"{where}: node_count must be one of {NODE_COUNTS}")
    if not 0.0 <= schedule.idle_share < 1.0:
        raise ScheduleError(f"{where}: idle_share must be at least 0 and below 1")
    _check_mended(steps, where)
    return schedule


def load(name_or_path: str) -> Schedule:
    """Load ``chaos/schedules/<name>.toml`` (or ``.json``), or a file given by path."""
    path = Path(name_or_path)
    if not path.exists():
        candidates = [SCHEDULE_DIR / f"{name_or_path}{ext}" for ext in (".toml", ".json")]
        found = [candidate for candidate in candidates if candidate.exists()]
        if not found:
            raise ScheduleError(f"no schedule {name_or_path!r} in {SCHEDULE_DIR}")
        path = found[0]
    text = path.read_text()
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ScheduleError(f"{path}: {exc}") from exc
    return parse(raw, str(path.relative_to(path.parent.parent.parent)
                          if path.is_relative_to(SCHEDULE_DIR) else path))


def shipped() -> list[str]:
    """The names of every schedule in ``chaos/schedules/``."""
    return sorted(path.stem for path in SCHEDULE_DIR.glob("*.*") if path.suffix in (".toml",
                                                                                    ".json"))
