"""Repair on real memcached and redis-server nodes (issue 11).

* A separate repair process (``tests/repair_loop.py``, passes back to back) races request
  threads that modify and delete the same sessions while a node restarts empty: no update is
  lost, no deleted session comes back.
* ``manage.py msm_repair``: exit status and counts.
* Decommission (DRAINING_NODES, ``msm_drain``, RETIRED_NODES) and adding a node lose nothing.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_msm.core.envelope import unpack
from django_msm.core.keys import parse
from django_msm.exceptions import CorruptCopy
from django_msm.runtime import get_cluster
from django_msm.session import SessionStore
from tests.redis_servers import RedisProcess
from tests.rolling import RETRY, Crowd, settle
from tests.servers import MemcachedProcess
from tests.visitors import Visitor, msm_settings, node_of

ROOT = Path(__file__).resolve().parent.parent
Node = MemcachedProcess | RedisProcess
KINDS = pytest.mark.parametrize("kind", [MemcachedProcess, RedisProcess],
                                ids=["memcached", "redis"])


def start(kind: type[Node], count: int) -> list[Node]:
    prefix = "n" if kind is MemcachedProcess else "r"
    return [kind(f"{prefix}{i}").start() for i in range(1, count + 1)]


# -- repair racing requests ---------------------------------------------------------------------
@dataclass
class Owned:
    """One session as its only user sees it: its key, every key it had, its counter."""

    key: str
    n: int = 1
    keys: list[str] = field(default_factory=list)
    deleted: bool = False


def new_owned() -> Owned:
    store = SessionStore()
    store["n"] = 1
    store.save()
    assert store.session_key is not None
    return Owned(store.session_key, keys=[store.session_key])


def use(sessions: Sequence[Owned], until: float, problems: list[str], seed: int) -> None:
    """Read, check and increment each session in turn; now and then log one out."""
    rng = random.Random(seed)
    while time.monotonic() < until:
        for owned in sessions:
            if owned.deleted:
                continue
            store = SessionStore(owned.key)
            seen = store.get("n")
            if seen != owned.n:
                problems.append(f"update lost: read {seen}, wrote {owned.n}")
            if rng.random() < 0.003:
                store.delete()
                owned.deleted = True
                continue
            store["n"] = owned.n + 1
            store.save()
            owned.n += 1
            if store.session_key != owned.key:
                owned.key = store.session_key
                owned.keys.append(owned.key)


def live_copies(key: str) -> list[str]:
    """Nodes holding a session copy (not a tombstone) of ``key``, read behind the engine."""
    cluster = get_cluster()
    sid = parse(key)
    assert sid is not None
    found = []
    for node, store in cluster.registry.stores.items():
        for stored in (cluster.keys.primary(sid), cluster.keys.backup(sid)):
            data = store.get(stored)
            try:
                copy = None if data is None else unpack(data, cluster.config.signing_keys)
            except CorruptCopy:
                copy = None
            if copy is not None and not copy.is_tombstone:
                found.append(f"{node.id}:{stored[:4]}")
    return found


def repair_process(nodes: Sequence[Node], stop: Path) -> subprocess.Popen[str]:
    spec = ",".join(node.spec for node in nodes)
    return subprocess.Popen([sys.executable, "-m", "tests.repair_loop", spec, str(stop)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)


@pytest.mark.integration
@KINDS
def test_repair_racing_requests_loses_no_update_and_resurrects_nothing(
    kind: type[Node], tmp_path: Path
) -> None:
    nodes = start(kind, 3)
    stop = tmp_path / "stop"
    try:
        with msm_settings(nodes, RETRY_TIMEOUT=0.2, AUTO_REPAIR=False):
            sessions = [new_owned() for _ in range(240)]
            nodes[1].restart_empty()  # two thirds of the sessions lost a copy
            repairer = repair_process(nodes, stop)
            problems: list[str] = []
            until = time.monotonic() + 8.0
            workers = [threading.Thread(target=use, args=(sessions[i::4], until, problems, i))
                       for i in range(4)]
            for worker in workers:
                worker.start()
            time.sleep(4.0)
            nodes[2].restart_empty()  # and again, with the race under way
            for worker in workers:
                worker.join(timeout=60)
            stop.touch()
            out, _ = repairer.communicate(timeout=60)
            totals = json.loads(out)
            call_command("msm_repair", "--rate", "0", stdout=_Out())
            live = [s for s in sessions if not s.deleted]
            lost = [s for s in live if SessionStore(s.key).get("n") != s.n] + problems
            gone = [key for s in sessions if s.deleted for key in s.keys]
            back = [key for key in gone if SessionStore(key).load() or live_copies(key)]
    finally:
        stop.touch()
        for node in nodes:
            node.stop()
    assert totals["passes"] >= 2 and totals["restored"] > 0, totals
    assert len(gone) > 5 and len(live) > 100
    assert (len(lost), len(back)) == (0, 0), (lost[:5], back[:5], totals)


# -- manage.py msm_repair -----------------------------------------------------------------------
@pytest.mark.integration
def test_msm_repair_exits_non_zero_with_counts_until_every_session_has_two_copies(
    memcached_nodes: Callable[..., list[MemcachedProcess]],
) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes, AUTO_REPAIR=False):
        for _ in range(30):
            new_owned()
        nodes[0].restart_empty()
        with pytest.raises(CommandError) as info:
            call_command("msm_repair", "--dry-run", "--json", stdout=(out := _Out()))
        assert info.value.returncode == 2
        found = json.loads(out.text)
        assert found["one_copy"] > 0 and found["sessions"] == 30 and not found["complete"]
        with pytest.raises(CommandError, match="no configured node"):
            call_command("msm_repair", "--node", "n9")
        call_command("msm_repair", "--node", "n2", stdout=_Out())
        call_command("msm_repair", stdout=(out := _Out()))
        assert "Restored" in out.text
        call_command("msm_repair", "--dry-run", "--json", stdout=(out := _Out()))
        assert json.loads(out.text)["two_copies"] == 30


class _Out:
    """A stdout for call_command that keeps the text and is not a terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


# -- node changes -------------------------------------------------------------------------------
def old_cookie_reads(users: Sequence[Visitor], keys: dict[str, str]) -> list[str]:
    """Users whose first key (an old cookie) no longer leads to their session."""
    wrong = []
    for user in users:
        replay = Visitor("replay")
        replay.client.cookies["sessionid"] = keys[user.tag]
        if replay.read() != user.expected():
            wrong.append(user.tag)
    return wrong


@pytest.mark.integration
@KINDS
def test_drain_then_retire_loses_nothing_and_old_cookies_find_their_sessions(
    kind: type[Node],
) -> None:
    nodes = start(kind, 3)
    first, second, leaving = nodes
    try:
        with msm_settings(nodes, RETRY_TIMEOUT=RETRY):
            crowd = Crowd.log_in("q", 150)
        old = {user.tag: str(user.key) for user in crowd.users}
        assert any(node_of(key) == leaving.node_id for key in old.values())
        with msm_settings(nodes, RETRY_TIMEOUT=RETRY, DRAINING_NODES=leaving.node_id):
            call_command("msm_drain", leaving.node_id, stdout=_Out())
        leaving.stop()
        with msm_settings([first, second], RETRY_TIMEOUT=RETRY,
                          RETIRED_NODES=leaving.node_id):
            settle(crowd)
            assert old_cookie_reads(crowd.users, old) == []
            settle(crowd)
            second.kill()  # and a later fault: every session still has a second copy
            tally = crowd.tally()
    finally:
        for node in nodes:
            node.stop()
    assert tally.clean, f"drained and retired, then a node lost: {tally}"


@pytest.mark.integration
@KINDS
def test_adding_a_node_anywhere_loses_nothing(kind: type[Node]) -> None:
    nodes = start(kind, 3)
    added = kind(f"{'n' if kind is MemcachedProcess else 'r'}4").start()
    try:
        with msm_settings(nodes, RETRY_TIMEOUT=RETRY):
            crowd = Crowd.log_in("g", 150)
        grown = [nodes[0], added, nodes[1], nodes[2]]
        with msm_settings(grown, RETRY_TIMEOUT=RETRY):
            settle(crowd)  # backups re-placed to the new order
            nodes[0].kill()
            tally = crowd.tally()
    finally:
        for node in [*nodes, added]:
            node.stop()
    assert tally.clean, f"node added, then one lost: {tally}"


# -- msm_status --redundancy ---------------------------------------------------------------------
@pytest.mark.integration
def test_msm_status_shows_two_copies_one_copy_stale_bytes_and_what_to_do(
    memcached_nodes: Callable[..., list[MemcachedProcess]],
) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes, AUTO_REPAIR=False, OPERATION_TIMEOUT=0.5):
        owned = [new_owned() for _ in range(30)]
        stale = next(o for o in owned if node_of(o.key) == "n1")  # its backup is on n2
        old = get_cluster().registry.stores[get_cluster().registry.nodes[1]].get(
            f"bak:{stale.key}")
        store = SessionStore(stale.key)
        store["n"] = 2
        store.save()
        get_cluster().registry.stores[get_cluster().registry.nodes[1]].set(
            f"bak:{stale.key}", old, 100)  # as if n2 had missed the update
        nodes[2].restart_empty()
        call_command("msm_status", "--redundancy", "--json", stdout=(out := _Out()))
        found = json.loads(out.text)
        call_command("msm_status", "--redundancy", stdout=(text := _Out()))
    section = found["redundancy"]
    assert section["sessions"] == 30 and section["stale"] == 1 and not section["complete"]
    assert section["one_copy"] > 0 and section["one_copy"] + section["two_copies"] == 30
    assert section["nodes"]["n2"]["stale"] == 1 and section["nodes"]["n1"]["bytes"] > 0
    assert any("one good copy: run `manage.py msm_repair`" in w for w in found["warnings"])
    assert any("1 stale copy (" in w for w in found["warnings"])
    assert "Redundancy:" in text.text and "TWO COPIES" in text.text
