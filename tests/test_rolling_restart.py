"""Issue 11: maintenance and later faults lose no session and undo no logout.

Real memcached and redis-server processes (three nodes, one parametrization per kind), users
driven in-process through Django's test client (``tests/rolling.py``: a crowd of ~300 logged-in
users, most of them idle). Each scenario ends with a ``Tally`` of sessions lost and logouts
undone; the assertion message carries it. These tests are the yardstick of the repair work: they
fail until it lands (figures of the day in the commit that added them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from chaos import schedule as chaos_schedules
from chaos.http import Reply
from chaos.load import Load, LoadParams, User
from tests.redis_servers import RedisProcess
from tests.rolling import RETRY, Crowd, SkewedClock, app_server, settle
from tests.servers import MemcachedProcess
from tests.visitors import msm_settings

USERS = 300
Node = MemcachedProcess | RedisProcess


@dataclass(frozen=True)
class Cluster:
    """Three started nodes in configured order, and a way to start one more of the same kind."""

    nodes: list[Node]
    spawn: Callable[[str], Node]

    @property
    def ids(self) -> list[str]:
        return [node.node_id for node in self.nodes]


@pytest.fixture(params=[MemcachedProcess, RedisProcess], ids=["memcached", "redis"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three nodes of one kind (n1..n3 or r1..r3); every node started here is killed after."""
    kind = request.param
    prefix = "n" if kind is MemcachedProcess else "r"
    started: list[Node] = []

    def spawn(node_id: str) -> Node:
        node = kind(node_id).start()
        started.append(node)
        return node

    try:
        yield Cluster([spawn(f"{prefix}{i}") for i in (1, 2, 3)], spawn)
    finally:
        for node in started:
            node.stop()


# -- rolling restart ----------------------------------------------------------------------------
@pytest.mark.integration
def test_rolling_restart_loses_no_session_and_undoes_no_logout(cluster: Cluster) -> None:
    """Each node in turn: kill -9, a few users log out and the active ones go on while it is
    down, started again empty on its port, then light traffic until the next one."""
    with msm_settings(cluster.nodes, RETRY_TIMEOUT=RETRY):
        crowd = Crowd.log_in("u", USERS)
        for index, node in enumerate(cluster.nodes):
            node.kill()
            crowd.log_out(crowd.around(cluster.ids, index))
            crowd.traffic(0)
            node.start()
            settle(crowd)
        tally = crowd.tally()
    assert tally.logouts == 15
    assert tally.clean, f"rolling restart: {tally}"


@pytest.mark.integration
def test_restart_then_a_later_death_loses_no_session(cluster: Cluster) -> None:
    """The second node restarts empty; after the gap the first dies for good. Sessions of the
    first kept their backup on the second: it must have been written again meanwhile."""
    with msm_settings(cluster.nodes, RETRY_TIMEOUT=RETRY):
        crowd = Crowd.log_in("d", USERS)
        cluster.nodes[1].restart_empty()
        settle(crowd)
        cluster.nodes[0].kill()
        tally = crowd.tally()
    assert tally.clean, f"restart, then a death: {tally}"


# -- node changes -------------------------------------------------------------------------------
@pytest.mark.integration
def test_retired_node_sessions_are_found_through_their_backups(cluster: Cluster) -> None:
    """The middle node leaves MEMCACHED_NODES for RETIRED_NODES and is shut down: sessions whose
    key names it are served from their backup on the next node, and nothing else is lost."""
    first, middle, last = cluster.nodes
    with msm_settings(cluster.nodes, RETRY_TIMEOUT=RETRY):
        crowd = Crowd.log_in("t", USERS)
    middle.stop()
    with msm_settings([first, last], RETRY_TIMEOUT=RETRY, RETIRED_NODES=middle.node_id):
        settle(crowd)
        tally = crowd.tally()
    assert tally.clean, f"node retired: {tally}"


@pytest.mark.integration
def test_node_moved_to_a_new_address_then_another_lost_loses_no_session(
    cluster: Cluster,
) -> None:
    """The middle node keeps its id on an empty server elsewhere; after the gap the last node
    dies for good, taking the only copy of the sessions named after the moved node."""
    first, middle, last = cluster.nodes
    with msm_settings(cluster.nodes, RETRY_TIMEOUT=RETRY):
        crowd = Crowd.log_in("m", USERS)
    moved = cluster.spawn(middle.node_id)
    middle.stop()
    with msm_settings([first, moved, last], RETRY_TIMEOUT=RETRY):
        settle(crowd)
        last.kill()
        tally = crowd.tally()
    assert tally.clean, f"node moved, then another lost: {tally}"


# -- logouts during a split, clocks skewed ------------------------------------------------------
# (wall clock of the app server that wrote the sessions, of the one that logged users out)
SKEWS = {
    "clocks-agree": (0.0, 0.0),
    "logout-host-60s-behind": (0.0, -60.0),
    "logout-host-60s-ahead": (0.0, 60.0),
    "session-host-60s-ahead": (60.0, 0.0),
    "session-host-60s-behind": (-60.0, 0.0),
}


@pytest.mark.integration
@pytest.mark.parametrize(("session_skew", "logout_skew"), SKEWS.values(), ids=list(SKEWS))
def test_logouts_during_a_split_stay_logged_out_with_skewed_clocks(
    memcached_nodes, session_skew: float, logout_skew: float
) -> None:
    """n2 is paused; users whose copies involve it log out on another app server (tombstones
    on n1 and n3); n2 resumes with the stale copies; after the gap n1, which holds tombstones
    of every leaver, restarts empty. A third app server must find every leaver logged out."""
    nodes = memcached_nodes(3)
    ids = [node.node_id for node in nodes]
    with msm_settings(nodes, OPERATION_TIMEOUT=0.5, RETRY_TIMEOUT=RETRY):
        with app_server(SkewedClock(session_skew)):
            crowd = Crowd.log_in("c", 90)
        nodes[1].pause()
        try:
            with app_server(SkewedClock(logout_skew)):
                crowd.log_out(crowd.around(ids, 1, each=5))
        finally:
            nodes[1].resume()
        with app_server(SkewedClock(session_skew)):
            settle(crowd)
        nodes[0].restart_empty()
        with app_server():
            tally = crowd.tally()
    assert tally.logouts == 11
    assert tally.clean, f"split, skew {session_skew:+.0f}/{logout_skew:+.0f} s: {tally}"


# -- the chaos schedule -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rolling-restart", "redis-rolling-restart"])
def test_chaos_rolling_restart_restarts_every_node_in_turn_with_idle_users(name: str) -> None:
    plan = chaos_schedules.load(name)
    nodes = [f"node:n{i}" for i in range(1, plan.node_count + 1)]
    assert plan.node_count == 3 and plan.idle_share >= 0.5
    assert [(step.action, step.target) for step in plan.steps] == [
        (action, node) for node in nodes for action in ("kill", "restart")]
    restarts = [step.at for step in plan.steps if step.action == "restart"]
    kills = [step.at for step in plan.steps if step.action == "kill"]
    assert all(kill - restart >= 8.0 for restart, kill in zip(restarts, kills[1:], strict=False))
    assert "rolling-restart" in chaos_schedules.DEFAULT_SCHEDULES


def test_chaos_node_targets_follow_the_schedules_node_count() -> None:
    steps = [{"at": 1, "action": "kill", "target": "node:n3"},
             {"at": 2, "action": "restart", "target": "node:n3"}]
    raw = {"name": "t", "description": "d", "nodes": "memcached", "duration": 10.0,
           "steps": steps}
    assert chaos_schedules.parse({**raw, "node_count": 3}).node_count == 3
    with pytest.raises(chaos_schedules.ScheduleError, match="unknown target"):
        chaos_schedules.parse(raw)
    with pytest.raises(chaos_schedules.ScheduleError, match="node_count"):
        chaos_schedules.parse({**raw, "node_count": 7})
    with pytest.raises(chaos_schedules.ScheduleError, match="idle_share"):
        chaos_schedules.parse({**raw, "node_count": 3, "idle_share": 1.0})


class ScriptedLoad(Load):
    """A Load whose requests never leave the process: every one succeeds for its user."""

    def __init__(self, plan: chaos_schedules.Schedule, params: LoadParams):
        super().__init__("http://127.0.0.1:1", plan, params)
        self.sent: list[str] = []
        self.user: str | None = None

    async def send(self, method: str, path: str, cookie: str | None,
                   form: dict[str, str] | None = None) -> Reply:
        self.sent.append(path)
        if path == "/api/login" and form is not None:
            self.user = form["user"]
        return Reply(200, "k1-n1" if cookie is None else None, {"user": self.user})


def test_chaos_idle_users_log_in_update_once_and_send_nothing_more() -> None:
    load = ScriptedLoad(chaos_schedules.load("rolling-restart"), LoadParams(users=10, ramp=0.0))
    users = [User(load, slot) for slot in range(10)]
    assert sum(user.idle for user in users) == 8
    idle = next(user for user in users if user.idle)
    asyncio.run(idle.run())
    assert load.sent == ["/api/login", "/api/increment"]
    assert idle.record is not None and len(idle.record.acked) == 1
    assert not User(ScriptedLoad(chaos_schedules.load("kill-node"), LoadParams()), 0).idle
