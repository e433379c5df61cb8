"""Telling what django_msm did, one plain line per event, in the order it happened.

The app instances append their events to one file (``testproject/shop/narration.py``: the
django_msm signals and its warnings, session keys already removed); ``EventTail`` reads the
lines added since its last look and ``Narrator`` turns each into a sentence, says once why an
expected one is expected, and folds repeats (the same line from the same instance) into a count.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The demo's own settings (testproject/testproject/settings.py), named in the explanations.
RETRY_TIMEOUT = "1 s"
OPERATION_TIMEOUT = "0.5 s"
WIDTH = 100

WHY = {
    "node_down": "Expected: a node that fails is quarantined, so no request waits for it; "
                 f"after RETRY_TIMEOUT ({RETRY_TIMEOUT} here) one request probes it again.",
    "stale_connection": "The node runs, but this instance last used it before it restarted: "
                        "its pooled connection broke on first use. One failure quarantines "
                        "the node for RETRY_TIMEOUT; the next probe finds it back.",
    "node_up": "The probe got an answer: the node takes copies again.",
    "session_moved": "This is the failover: the session was read from its backup copy and "
                     "saved under a new key on a live node; the same response sent the browser "
                     "its new cookie.",
    "session_taken_over": "Sticky mode: the key named an instance that is gone; this one loaded "
                          "the session from memcached and put its own name in the key.",
    "no_backup": "Expected while only one node answers: there is no second node for a backup "
                 "copy. The first save after the other node is back writes one there again.",
}


def plain_error(error: str) -> str:
    """A node error (an exception's repr) in words."""
    lowered = error.lower()
    if "refused" in lowered:
        return "connection refused: nothing listens on its port"
    if "timeout" in lowered or "timed out" in lowered:
        return f"no answer within OPERATION_TIMEOUT ({OPERATION_TIMEOUT})"
    if any(word in lowered for word in ("close", "reset", "broken pipe")):
        return "the connection broke"
    return error


def _key(where: dict[str, Any]) -> str:
    """The part of a key that names where it lives: ``…-n1`` or ``…-n1.app2``."""
    text = "…"
    if where.get("node"):
        text += f"-{where['node']}"
    if where.get("route"):
        text += f".{where['route']}"
    return text


@dataclass(frozen=True)
class Event:
    """One thing django_msm did in one app instance."""

    t: float
    instance: str
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """What the explanation is about (one per topic, said once)."""
        if self.kind == "warning" and "no backup" in self.fields.get("message", ""):
            return "no_backup"
        return self.kind

    def sentence(self) -> str:
        f = self.fields
        if self.kind == "node_down":
            return f"node {f['node']} quarantined ({plain_error(f.get('error', ''))})"
        if self.kind == "node_up":
            return f"node {f['node']} answers again"
        if self.kind == "session_moved":
            old, new = f.get("old", {}), f.get("new", {})
            return (f"a session moved: key {_key(old)} → {_key(new)} "
                    f"(node {old.get('node')} → {new.get('node')})")
        if self.kind == "session_taken_over":
            old, new = f.get("old", {}), f.get("new", {})
            return (f"a session taken over: key {_key(old)} → {_key(new)} "
                    f"(route {old.get('route')} → {new.get('route')})")
        if self.kind == "warning":
            return f"warning: {f.get('message', '')}"
        return f"{self.kind} {json.dumps(f)}"


class EventTail:
    """Reads the events appended to ``path`` since the last call (whole lines only)."""

    def __init__(self, path: Path, from_end: bool = False):
        self.path = path
        self.offset = path.stat().st_size if from_end and path.exists() else 0

    def read(self) -> list[Event]:
        try:
            with open(self.path, "rb") as events:
                events.seek(self.offset)
                data = events.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        return [_parse(line) for line in complete.decode(errors="replace").splitlines() if line]


def _parse(line: str) -> Event:
    try:
        record = json.loads(line)
        return Event(record.pop("t"), record.pop("instance"), record.pop("event"), record)
    except (ValueError, KeyError, AttributeError):
        return Event(time.time(), "?", "warning", {"message": f"unreadable event: {line[:80]}"})


@dataclass
class _Repeat:
    first: float
    count: int = 0


class Narrator:
    """Turns events into lines: ``stamp(event)`` prefix, explanations once, repeats counted.

    A line already told by the same instance within ``window`` seconds is not told again; its
    repeats are told as a count once the window has passed (``due``) or at ``flush``.
    """

    def __init__(self, stamp: Callable[[Event], str], window: float = 10.0, explain: bool = True,
                 node_runs: Callable[[str], bool] = lambda node_id: False):
        """``node_runs(node_id)``: whether that memcached process runs and is not paused, which
        tells a node dropped for a stale connection from one that really failed."""
        self.stamp = stamp
        self.node_runs = node_runs
        self.window = window
        self.explain = explain
        self.explained: set[str] = set()
        self.repeats: dict[tuple[str, str], _Repeat] = {}

    def lines(self, events: list[Event]) -> list[str]:
        out: list[str] = []
        for event in events:
            out += self.due(event.t)
            text = event.sentence()
            seen = self.repeats.get((event.instance, text))
            if seen is not None:
                seen.count += 1
                continue
            self.repeats[(event.instance, text)] = _Repeat(event.t)
            out.append(f"{self.stamp(event)}{text}")
            topic = self._topic(event)
            if self.explain and topic in WHY and topic not in self.explained:
                self.explained.add(topic)
                indent = " " * (len(self.stamp(event)) + 2)
                out.append(textwrap.fill(WHY[topic], WIDTH, initial_indent=indent + "↳ ",
                                         subsequent_indent=indent + "  "))
        return out

    def _topic(self, event: Event) -> str:
        broke = plain_error(event.fields.get("error", "")) == "the connection broke"
        if event.kind == "node_down" and broke and self.node_runs(event.fields["node"]):
            return "stale_connection"
        return event.topic

    def due(self, now: float) -> list[str]:
        """Counts of the repeats whose window has passed (their next occurrence is told)."""
        out = []
        for (instance, text), seen in list(self.repeats.items()):
            if now - seen.first >= self.window:
                del self.repeats[(instance, text)]
                if seen.count:
                    out.append(self._count_line(instance, text, seen))
        return out

    def flush(self) -> list[str]:
        """Counts of every pending repeat, and a fresh start."""
        out = [self._count_line(i, t, s) for (i, t), s in self.repeats.items() if s.count]
        self.repeats.clear()
        return out

    def _count_line(self, instance: str, text: str, seen: _Repeat) -> str:
        times = "once more" if seen.count == 1 else f"{seen.count} more times"
        stamp = self.stamp(Event(time.time(), instance, "repeat"))
        return f"{stamp}(and {times}: {text})"
