"""Crowds of logged-in users for the rolling-restart tests (issue 11), and how their fate is told.

A ``Crowd`` is ``tests/visitors.py``'s ``Visitor`` users (Django test clients through the stock
SessionMiddleware to ``tests/views.py``; each session holds the user's own counter and tagged
history), most of them idle: they make one request and then none until the final count, as the
users of a real site do between two restarts. Only a tenth keep up light traffic. The scenarios
break nodes between the crowd's steps; ``Crowd.tally`` then reads every session back and replays
every key of every user who logged out, and the tests assert the ``Tally`` is clean.

Nothing here repairs anything: the cluster's own automatic repair (AUTO_REPAIR, on by default)
must. ``settle`` is where a test waits between two faults: light traffic until a dry run of
``msm_repair`` finds every live session with two good copies and no stale copy, failing after
REPAIR_DEADLINE.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from django_msm.runtime import build_cluster, get_config, install_cluster, reset_cluster
from django_msm.session import SessionStore
from tests.visitors import Visitor, by_node, new_visitors

# RETRY_TIMEOUT of these tests: a node that failed is probed again this long after.
RETRY = 1.0
# Between two faults the operators wait ~15 s; automatic repair waits for the marks to
# be quiet (RETRY_TIMEOUT + 2 * OPERATION_TIMEOUT = 2 s here), then restores 300 sessions in
# well under a second. ``settle`` polls every GAP and fails after REPAIR_DEADLINE (a generous
# bound: two busy cores shared with other suites).
GAP = 0.5
REPAIR_DEADLINE = 15.0
ACTIVE_EVERY = 10  # one user in ten keeps up light traffic; the others are idle


class SkewedClock:
    """The real clocks, with wall time moved by ``skew`` seconds (an app host's wrong clock)."""

    def __init__(self, skew: float):
        self.skew = skew

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time() + self.skew


@contextlib.contextmanager
def app_server(clock: SkewedClock | None = None) -> Iterator[None]:
    """Requests inside run as a fresh app server: a node registry of its own, with ``clock``.

    The engine's registry is per process; installing a new one is how one test process plays
    several app servers that never saw each other's view of the nodes.
    """
    install_cluster(build_cluster(get_config(), clock))
    try:
        yield
    finally:
        reset_cluster()


@dataclass(frozen=True)
class Tally:
    """What became of a crowd's sessions at the end of a scenario."""

    sessions: int  # users who did not log out
    lost: int  # ... whose data did not read back exactly as they wrote it
    lost_idle: int  # ... of them idle users
    logouts: int
    undone: int  # logouts after which some key of the user served their data again

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.undone == 0

    def __str__(self) -> str:
        return (f"lost {self.lost} of {self.sessions} sessions ({self.lost_idle} of them idle), "
                f"{self.undone} of {self.logouts} logouts undone")


@dataclass
class Crowd:
    """Users of one site: idle ones, active ones, and those who logged out (with every key)."""

    users: list[Visitor]
    active: list[Visitor]
    left: dict[str, list[str]] = field(default_factory=dict)  # tag -> keys the user ever had
    broken: set[str] = field(default_factory=set)  # tags whose data went wrong mid-run

    @classmethod
    def log_in(cls, prefix: str, count: int) -> Crowd:
        """``count`` users with one stored session each; every ACTIVE_EVERY-th stays active."""
        users = new_visitors(prefix, count)
        return cls(users, users[::ACTIVE_EVERY])

    @property
    def idle(self) -> list[Visitor]:
        active = {user.tag for user in self.active}
        return [user for user in self.users if user.tag not in active and user.tag not in self.left]

    def staying(self) -> list[Visitor]:
        return [user for user in self.users if user.tag not in self.left]

    def traffic(self, seconds: float) -> None:
        """Light traffic by the active users for ``seconds`` (at least one pass): reads and
        writes in turn. A user whose data goes wrong is noted and leaves the traffic."""
        deadline = time.monotonic() + seconds
        passes = 0
        while passes == 0 or time.monotonic() < deadline:
            users = [u for u in self.active if u.tag not in self.broken | set(self.left)]
            if not users:  # nobody left to make traffic: just let the time pass
                time.sleep(max(0.0, deadline - time.monotonic()))
                return
            for user in users:
                data = _answer(user, user.visit if passes % 2 else user.read)
                if data != user.expected():
                    self.broken.add(user.tag)
            passes += 1

    def log_out(self, leaving: Sequence[Visitor]) -> None:
        """Each of ``leaving`` logs out (``flush()``); every key they had is kept for the tally."""
        for user in leaving:
            assert user.request("/logout/") == {}, f"{user.tag}'s logout was not served"
            self.left[user.tag] = list(user.keys)

    def around(self, node_ids: Sequence[str], index: int, each: int = 2) -> list[Visitor]:
        """Idle users whose copies involve ``node_ids[index]``: ``each`` with their primary
        there, ``each`` with their backup there (primary on the node before it in configured
        order), and one with neither."""
        groups = by_node(self.idle)
        here, before = node_ids[index], node_ids[index - 1]
        others = [node_id for node_id in node_ids if node_id not in (here, before)]
        chosen = groups.get(here, [])[:each] + groups.get(before, [])[:each]
        chosen += [user for node_id in others for user in groups.get(node_id, [])[:1]]
        assert len(chosen) >= 2 * each, f"too few idle users around {here}"
        return chosen

    def tally(self) -> Tally:
        """Read every staying user's session back; replay every key of every user who left."""
        lost = [user for user in self.staying()
                if user.tag in self.broken or _answer(user, user.read) != user.expected()]
        active = {user.tag for user in self.active}
        undone = [tag for tag, keys in self.left.items() if any(map(came_back, keys))]
        return Tally(len(self.staying()), len(lost),
                     sum(1 for user in lost if user.tag not in active), len(self.left),
                     len(undone))


def _answer(user: Visitor, request: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The session the view saw, or None when the request was not served (counted as lost)."""
    try:
        return request()
    except AssertionError:  # a status other than 200: Visitor.request asserts it
        return None


def came_back(key: str) -> bool:
    """Whether a key its user logged out of serves anything again, by cookie or through the
    store: a logout undone."""
    replay = Visitor("replay")
    replay.client.cookies[settings.SESSION_COOKIE_NAME] = key
    return _answer(replay, replay.read) != {} or SessionStore(key).load() != {}


def settle(crowd: Crowd) -> float:
    """Between two faults: light traffic until repair is done (a dry run of ``msm_repair``
    finds every live session with two good copies and no stale copy); return how long it took.
    Fails after REPAIR_DEADLINE."""
    start = time.monotonic()
    while True:
        crowd.traffic(GAP)
        if repaired():
            return time.monotonic() - start
        waited = time.monotonic() - start
        assert waited < REPAIR_DEADLINE, f"repair not done after {waited:.1f} s: {last_report()}"


_last: list[str] = [""]


def repaired() -> bool:
    """Whether ``manage.py msm_repair --dry-run`` exits 0 now (its output is kept)."""
    out = io.StringIO()
    try:
        call_command("msm_repair", "--dry-run", stdout=out)
    except CommandError as exc:
        _last[0] = f"{exc} ({out.getvalue().strip()})"
        return False
    return True


def last_report() -> str:
    return _last[0]
