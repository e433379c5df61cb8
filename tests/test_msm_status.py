"""Issue 6: ``manage.py msm_status``: exact output on a hand-built status, then real clusters.

The renderers are pure functions of a ``ClusterStatus``, so every format (text, coloured text,
JSON) is compared character for character on the fixture below. The end-to-end tests run the
command against real memcached processes: counts through the engine, a killed node, a hung node,
and the real process exit status of ``--check``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.test import override_settings

from django_msm.core import keys as msm_keys
from django_msm.core.stats import Histogram
from django_msm.management.commands import msm_status
from django_msm.ops.inspectors import Counts, Probe
from django_msm.ops.publish import Figures, Timing
from django_msm.ops.status import ClusterStatus, NodeStatus, to_dict
from django_msm.session import SessionStore
from tests.servers import MemcachedProcess


# -- the fixture ---------------------------------------------------------------------------------
def timing(*values: float) -> Timing:
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    return Timing(histogram.total, histogram.sum, tuple(histogram.counts))


def fixture_status() -> ClusterStatus:
    """Three nodes: n1 up, n2 down (its sessions live on as backups on n3), n3 nearly full."""
    n1 = NodeStatus(
        "n1", "127.0.0.1:11211", "memcached", False, "up",
        Probe(True, "", 0.25, "1.6.18", 3725, 1_572_864, 67_108_864, 42, 0),
        Counts({"n1": 20}, {"n3": 2}),
    )
    n2 = NodeStatus("n2", "127.0.0.1:11212", "memcached", False, "quarantined",
                    Probe(False, "timed out"))
    n3 = NodeStatus(
        "n3", "redis://10.0.0.3:6379/0", "redis", True, "up",
        Probe(True, "", 1.5, "7.0.15", 200_000, 62_914_560, 67_108_864, 10, 3),
        Counts({"n3": 2}, {"n1": 15, "n2": 18}),
    )
    web1 = Figures("web1:101", {"creates": 3, "loads_primary": 10},
                   {"load": timing(0.0005, 0.001)}, 1_700_000_000.5)
    web2 = Figures("web2:202", {"creates": 5, "saves": 1},
                   {"load": timing(0.004), "serialized_size": timing(120, 180)}, 1_700_000_001.0)
    return ClusterStatus((n1, n2, n3), (web1, web2), True, 1_700_000_002.0)


EXPECTED_TEXT = """\
NODE  ROLE      PROBE  LATENCY  MEMORY  EVICTED  SESSIONS  BACKUPS  THIS PROCESS
n1    regular   up     0.25 ms  2%      0        20        2        up
n2    regular   down   -        -       -        -         -        quarantined
n3    failover  up     1.50 ms  94%     3        2         33       up
PROBE is a check made just now; THIS PROCESS is what this process last saw.

Sessions: 40 distinct (22 primary copies, 35 backup copies)
Backup coverage: 77.3% of primary copies have their backup copy
Not every node was counted: these figures are lower bounds.

Warnings:
  ! node n2 (127.0.0.1:11212) is down: timed out
  ! 18 sessions of node n2 are served from a backup copy
  ! 5 sessions have no backup copy
  ! node n3 evicted 3 items: sessions may have been lost; give it more memory
  ! node n3 memory is 94% full

Statistics: 2 instances, published 1.0 s to 1.5 s ago

COUNTER        TOTAL
creates        8
loads_primary  10
saves          1

TIMING           COUNT  P50    P95    P99
load             3      1 ms   5 ms   5 ms
serialized_size  2      200 B  200 B  200 B
"""

EXPECTED_WIDE_NODES = """\
NODE  ADDRESS                  KIND       ROLE      PROBE  LATENCY  VERSION  UPTIME  MEMORY               ITEMS  EVICTED  SESSIONS  BACKUPS  THIS PROCESS
n1    127.0.0.1:11211          memcached  regular   up     0.25 ms  1.6.18   1h 2m   1.5 MiB / 64.0 MiB   42     0        20        2        up
n2    127.0.0.1:11212          memcached  regular   down   -        -        -       -                    -      -        -         -        quarantined
n3    redis://10.0.0.3:6379/0  redis      failover  up     1.50 ms  7.0.15   2d 7h   60.0 MiB / 64.0 MiB  10     3        2         33       up
"""  # noqa: E501 (--wide is as wide as it is)

EXPECTED_WIDE_COUNTERS = """\
COUNTER        TOTAL  web1:101  web2:202
creates        8      3         5
loads_primary  10     10        0
saves          1      0         1
"""

PROBE_N2 = {
    "up": False, "error": "timed out", "latency_ms": None, "version": None, "uptime_s": None,
    "memory_used": None, "memory_limit": None, "items": None, "evictions": None,
}
NODE_N2_JSON = {
    "id": "n2", "address": "127.0.0.1:11212", "kind": "memcached", "failover": False,
    "role": "regular", "probe": PROBE_N2, "process_view": "quarantined",
    "sessions": None, "backups": None, "count_error": None,
}


def expected_json() -> dict:
    probe_n1 = {"up": True, "error": None, "latency_ms": 0.25, "version": "1.6.18",
                "uptime_s": 3725, "memory_used": 1572864, "memory_limit": 67108864, "items": 42,
                "evictions": 0}
    probe_n3 = {**probe_n1, "latency_ms": 1.5, "version": "7.0.15", "uptime_s": 200000,
                "memory_used": 62914560, "items": 10, "evictions": 3}
    n1 = {**NODE_N2_JSON, "id": "n1", "address": "127.0.0.1:11211", "probe": probe_n1,
          "process_view": "up", "sessions": 20, "backups": 2}
    n3 = {**n1, "id": "n3", "address": "redis://10.0.0.3:6379/0", "kind": "redis",
          "failover": True, "role": "failover", "probe": probe_n3, "sessions": 2, "backups": 33}
    load_web1 = {"count": 2, "sum": 0.0015, "p50": 0.0005, "p95": 0.001, "p99": 0.001}
    load_web2 = {"count": 1, "sum": 0.004, "p50": 0.005, "p95": 0.005, "p99": 0.005}
    size = {"count": 2, "sum": 300.0, "p50": 200.0, "p95": 200.0, "p99": 200.0}
    return {
        "schema": 2,
        "generated_at": 1700000002.0,
        "nodes": [n1, NODE_N2_JSON, n3],
        "sessions": 40,
        "primary_copies": 22,
        "backup_copies": 35,
        "backup_coverage": 0.772727,
        "complete": False,
        "warnings": [
            "node n2 (127.0.0.1:11212) is down: timed out",
            "18 sessions of node n2 are served from a backup copy",
            "5 sessions have no backup copy",
            "node n3 evicted 3 items: sessions may have been lost; give it more memory",
            "node n3 memory is 94% full",
        ],
        "statistics": {
            "instances": [
                {"instance": "web1:101", "published_at": 1700000000.5, "age_s": 1.5,
                 "counters": {"creates": 3, "loads_primary": 10}, "timings": {"load": load_web1}},
                {"instance": "web2:202", "published_at": 1700000001.0, "age_s": 1.0,
                 "counters": {"creates": 5, "saves": 1},
                 "timings": {"load": load_web2, "serialized_size": size}},
            ],
            "total": {
                "instance": "total",
                "counters": {"creates": 8, "loads_primary": 10, "saves": 1},
                "timings": {
                    "load": {"count": 3, "sum": 0.0055, "p50": 0.001, "p95": 0.005, "p99": 0.005},
                    "serialized_size": size,
                },
            },
        },
    }


class Marks:
    """A Style whose colours are visible markers, to check which cells get which colour."""

    def __getattr__(self, name: str):
        return lambda text: f"<{name}>{text}</{name}>"


# -- pure renderers ------------------------------------------------------------------------------
def test_text_output_is_exact():
    assert msm_status.render_text(fixture_status(), no_style()) == EXPECTED_TEXT


def test_json_output_is_exact():
    rendered = msm_status.render_json(fixture_status())
    assert json.loads(rendered) == expected_json()
    assert rendered == json.dumps(expected_json(), indent=2) + "\n"  # key order is part of it


def test_coloured_text_marks_states_headings_and_warnings():
    lines = msm_status.render_text(fixture_status(), Marks()).splitlines()
    assert lines[0] == f"<MIGRATE_HEADING>{EXPECTED_TEXT.splitlines()[0]}</MIGRATE_HEADING>"
    assert lines[2] == (
        "n2    regular   <ERROR>down </ERROR>  -        -       -        -         -        "
        "<WARNING>quarantined </WARNING>"
    )
    assert lines[1].count("<SUCCESS>up") == 2
    assert lines[11] == "<WARNING>  ! node n2 (127.0.0.1:11212) is down: timed out</WARNING>"


def test_text_without_counting_or_statistics():
    status = fixture_status()
    node = dataclasses.replace(status.nodes[0], counts=None)
    rendered = msm_status.render_text(ClusterStatus((node,), (), False, 5.0), no_style())
    assert rendered.splitlines() == [
        "NODE  PROBE  LATENCY  MEMORY  EVICTED  SESSIONS  BACKUPS  THIS PROCESS",
        "n1    up     0.25 ms  2%      0        -         -        up",
        msm_status.LEGEND,
        "",
        "Sessions: not counted (--no-count)",
        "",
        "Warnings: none",
        "",
        "Statistics: none published (app processes publish every few seconds)",
    ]


def test_single_node_has_no_backup_figures():
    n1 = dataclasses.replace(fixture_status().nodes[0], counts=Counts({None: 7}, {}))
    status = ClusterStatus((n1,), (), True, 0.0)
    assert (status.sessions, status.backup_coverage, status.without_backup) == (7, None, None)
    assert status.warnings == []
    assert to_dict(status)["backup_coverage"] is None


def test_wide_adds_the_servers_details_and_one_column_per_instance():
    rendered = msm_status.render_text(fixture_status(), no_style(), wide=True)
    assert rendered.startswith(EXPECTED_WIDE_NODES + msm_status.LEGEND + "\n\n")
    assert "\n\n" + EXPECTED_WIDE_COUNTERS + "\n" in rendered


def test_the_default_text_fits_80_columns_and_wraps_long_warnings():
    status = fixture_status()
    down = dataclasses.replace(
        status.nodes[1], probe=Probe(False, "ConnectionRefusedError(111, 'Connection refused') "
                                     "while connecting to 127.0.0.1:11212 from a worker")
    )
    rendered = msm_status.render_text(
        dataclasses.replace(status, nodes=(status.nodes[0], down, status.nodes[2])), no_style()
    )
    assert max(len(line) for line in rendered.splitlines()) <= 80
    assert max(len(line) for line in EXPECTED_TEXT.splitlines()) <= 80
    assert (
        "  ! node n2 (127.0.0.1:11212) is down: ConnectionRefusedError(111, 'Connection\n"
        "    refused') while connecting to 127.0.0.1:11212 from a worker\n"
    ) in rendered


def test_singulars_and_the_age_of_one_instance():
    """One of everything: no "1 sessions", "1 primary copies", "1 items"."""
    n1 = NodeStatus("n1", "a:1", "memcached", False, "not used",
                    Probe(True, "", 0.5, None, None, None, None, 3, 1), Counts({"n1": 1}, {}))
    n2 = NodeStatus("n2", "a:2", "memcached", False, "not used", Probe(False, "refused"))
    n3 = NodeStatus("n3", "a:3", "memcached", False, "not used", Probe(True, "", 0.5),
                    Counts({}, {"n2": 1}))
    web = Figures("web1:7", {}, {}, 1_000.0)
    rendered = msm_status.render_text(ClusterStatus((n1, n2, n3), (web,), True, 1_003.25),
                                      no_style())
    assert rendered.split("\n\n")[1:] == [
        "Sessions: 2 distinct (1 primary copy, 1 backup copy)\n"
        "Backup coverage: 0.0% of primary copies have their backup copy\n"
        "Not every node was counted: these figures are lower bounds.",
        "Warnings:\n"
        "  ! node n2 (a:2) is down: refused\n"
        "  ! 1 session of node n2 is served from a backup copy\n"
        "  ! 1 session has no backup copy\n"
        "  ! node n1 evicted 1 item: sessions may have been lost; give it more memory",
        "Statistics: 1 instance, published 3.2 s ago",
        "No counters yet: no request has used a session since these processes started.\n",
    ]


def test_process_view_names_what_this_process_saw():
    from django_msm.clock import FakeClock
    from django_msm.core.health import NodeHealth
    from django_msm.exceptions import NodeUnavailable
    from django_msm.ops.status import _process_view

    health = NodeHealth("n1", retry_timeout=1.0, retry_attempts=2, clock=FakeClock())
    views = [_process_view(health)]
    health.record_success()
    views.append(_process_view(health))
    health.record_failure(NodeUnavailable("n1", TimeoutError("timed out")))
    views.append(_process_view(health))
    health.record_failure(NodeUnavailable("n1", TimeoutError("timed out")))
    views.append(_process_view(health))
    assert views == ["not used", "up", "quarantined", "dead"]


@pytest.fixture
def fixed_status(monkeypatch):
    """The command renders the fixture instead of asking the nodes."""
    calls = []

    def collect(**kwargs):
        calls.append(kwargs)
        return fixture_status()

    monkeypatch.setattr(msm_status, "collect_status", collect)
    return calls


def test_command_prints_the_fixture_without_colours_when_piped(fixed_status):
    out = StringIO()
    call_command("msm_status", stdout=out)
    assert out.getvalue() == EXPECTED_TEXT
    wide = StringIO()
    call_command("msm_status", "--wide", stdout=wide)
    assert wide.getvalue() == msm_status.render_text(fixture_status(), no_style(), wide=True)
    assert fixed_status == [{"count": True, "check_copies": False}] * 2


def test_command_colours_when_forced(fixed_status):
    out = StringIO()
    call_command("msm_status", stdout=out, force_color=True)
    assert "\x1b[" in out.getvalue()
    assert out.getvalue() != EXPECTED_TEXT


def test_command_json_and_check_exit_status(fixed_status):
    out = StringIO()
    with pytest.raises(CommandError, match="^nodes down: n2$") as raised:
        call_command("msm_status", "--json", "--check", "--no-count", stdout=out)
    assert raised.value.returncode == msm_status.CHECK_FAILED == 2
    assert json.loads(out.getvalue()) == expected_json()
    assert fixed_status == [{"count": False, "check_copies": False}]


def test_watch_refreshes_until_interrupted(fixed_status, monkeypatch):
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(msm_status.time, "sleep", sleep)
    out = StringIO()
    call_command("msm_status", "--watch", "0.5", stdout=out)
    assert out.getvalue() == EXPECTED_TEXT * 2
    assert sleeps == [0.5, 0.5]


@pytest.mark.parametrize("args", [["--watch", "1", "--check"], ["--watch", "0"]])
def test_watch_refuses_check_and_non_positive_intervals(fixed_status, args):
    with pytest.raises(CommandError, match="--watch"):
        call_command("msm_status", *args, stdout=StringIO())
    assert fixed_status == []


# -- end to end, real memcached ------------------------------------------------------------------
def cluster(servers: list[MemcachedProcess], timeout: float = 0.5) -> override_settings:
    spec = ",".join(server.spec for server in servers)
    return override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": timeout})


def create_sessions(count: int) -> list[str]:
    keys = []
    for number in range(count):
        store = SessionStore()
        store["number"] = number
        store.save()
        keys.append(store.session_key)
    return keys


def run_json(*args: str) -> dict:
    out = StringIO()
    call_command("msm_status", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.integration
def test_json_reports_every_session_and_backup_where_it_is(memcached_nodes):
    servers = memcached_nodes(2)
    with cluster(servers):
        keys = create_sessions(37)
        report = run_json()
        text = StringIO()
        call_command("msm_status", stdout=text)
    named = {node: sum(msm_keys.parse(k).node_id == node for k in keys) for node in ("n1", "n2")}
    assert (report["sessions"], report["primary_copies"], report["backup_copies"]) == (37, 37, 37)
    assert [
        (n["id"], n["probe"]["up"], n["process_view"], n["sessions"], n["backups"])
        for n in report["nodes"]
    ] == [
        ("n1", True, "up", named["n1"], named["n2"]),
        ("n2", True, "up", named["n2"], named["n1"]),
    ]
    assert report["backup_coverage"] == 1.0 and report["complete"] and report["warnings"] == []
    rows = text.getvalue().splitlines()[1:3]
    for row, server in zip(rows, servers, strict=True):
        assert row.startswith(f"{server.node_id}    up     ")
        assert row.endswith("  up")
    assert "Sessions: 37 distinct (37 primary copies, 37 backup copies)\n" in text.getvalue()


@pytest.mark.integration
@pytest.mark.parametrize("failure", ["kill", "pause"])
def test_a_failed_node_is_reported_down_quickly(memcached_nodes, failure):
    servers = memcached_nodes(2)
    with cluster(servers, timeout=0.5):
        keys = create_sessions(12)
        getattr(servers[1], failure)()
        try:
            started = time.monotonic()
            report = run_json()
            with pytest.raises(CommandError) as raised:
                call_command("msm_status", "--check", stdout=StringIO())
            elapsed = time.monotonic() - started
        finally:
            servers[1].resume() if failure == "pause" else None
    on_n2 = sum(msm_keys.parse(k).node_id == "n2" for k in keys)
    assert [n["probe"]["up"] for n in report["nodes"]] == [True, False]
    # This process wrote to n2 before it failed and has not called it since: named as such.
    assert [n["process_view"] for n in report["nodes"]] == ["up", "up"]
    assert report["nodes"][1]["sessions"] is None and report["nodes"][1]["probe"]["error"]
    assert report["sessions"] == 12  # n2's sessions still count through their backups on n1
    served = f"{on_n2} session of node n2 is" if on_n2 == 1 else f"{on_n2} sessions of node n2 are"
    assert f"{served} served from a backup copy" in report["warnings"]
    assert raised.value.returncode == 2 and str(raised.value) == "nodes down: n2"
    # Two full runs: each costs about one OPERATION_TIMEOUT (0.5 s) for a hung node.
    assert elapsed < 2 * 0.5 + 4.0


@pytest.mark.integration
def test_no_count_never_crawls_the_nodes(memcached_nodes):
    from tests.test_failover_integration import node_stats

    servers = memcached_nodes(2)
    with cluster(servers):
        create_sessions(5)
        before = [node_stats(s.port)["lru_crawler_starts"] for s in servers]
        report = run_json("--no-count")
        after = [node_stats(s.port)["lru_crawler_starts"] for s in servers]
    assert before == after
    assert report["sessions"] is None and [n["sessions"] for n in report["nodes"]] == [None, None]
    assert all(n["probe"]["up"] for n in report["nodes"])


@pytest.mark.integration
def test_check_exit_status_of_a_real_process():
    """The settings of the suite name two nodes nobody listens on: both are down."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "django", "msm_status", "--check", "--no-count"],
        cwd=root, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "nodes down: n1, n2" in result.stderr
    # A fresh process has made no call of its own: "not used", never a contradicting "up".
    assert result.stdout.splitlines()[1:3] == [
        "n1    down   -        -       -        -         -        not used",
        "n2    down   -        -       -        -         -        not used",
    ]
