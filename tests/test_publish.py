"""Issue 6: app processes publish their statistics; msm_status shows them per instance, summed.

Rate limiting, expiry and the index are tested on in-memory nodes with a fake clock; the
cluster-wide sum is tested with two real app processes publishing to real memcached nodes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.signals import request_finished
from django.test import Client, override_settings

from django_msm.clock import FakeClock
from django_msm.core.cluster import Cluster
from django_msm.core.stats import Histogram, Statistics
from django_msm.ops import publish
from django_msm.ops.publish import Figures, Publisher, Timing, read_published, stats_key, total
from django_msm.runtime import get_cluster, get_config
from django_msm.stores.memory import InMemoryStore

ROOT = Path(__file__).resolve().parent.parent


def histogram_timing(values: list[float]) -> Timing:
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    return Timing(histogram.total, histogram.sum, tuple(histogram.counts))


# -- figures -------------------------------------------------------------------------------------
def test_figures_survive_encoding():
    figures = Figures("web1:7", {"creates": 4, "saves": 2},
                      {"load": histogram_timing([0.001, 0.002, 3.0, 1e9])}, 1_700_000_000.25)
    assert publish.decode(publish.encode(figures)) == figures


def test_total_sums_counters_and_keeps_percentiles_exact():
    rng = random.Random(6)
    parts = [[rng.lognormvariate(-6, 2) for _ in range(rng.randint(1, 300))] for _ in range(4)]
    instances = [
        Figures(f"h:{i}", {"loads_primary": len(values), **({"saves": 1} if i else {})},
                {"load": histogram_timing(values)})
        for i, values in enumerate(parts)
    ]
    summed = total(instances)
    everything = histogram_timing([value for values in parts for value in values])
    assert summed.counters == {"loads_primary": sum(map(len, parts)), "saves": 3}
    assert summed.timings["load"].buckets == everything.buckets
    assert summed.timings["load"].summary() == pytest.approx(everything.summary())


def test_export_copies_counters_and_buckets():
    stats = Statistics()
    stats.incr("creates", 3)
    stats.observe("load", 0.003)
    counters, timings = publish.export(stats)
    stats.incr("creates")  # the export is a copy, not a view
    assert counters == {"creates": 3}
    assert timings["load"] == histogram_timing([0.003])


def test_instance_name_is_a_safe_key_part(monkeypatch):
    monkeypatch.setattr(publish.socket, "gethostname", lambda: "web 1/ü.example")
    assert publish.instance_name() == f"web_1__.example:{os.getpid()}"


# -- publishing on in-memory nodes ---------------------------------------------------------------
@pytest.fixture
def memory_cluster():
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": "n1:10.0.0.1:1,n2:10.0.0.2:1",
                                       "STORAGE_KEY_PREFIX": "static:shop"}):
        config = get_config()
    clock = FakeClock()
    stores = {node: InMemoryStore(node, clock) for node in config.nodes}
    return Cluster(config, clock, stores), clock


def test_publisher_writes_every_node_at_most_once_per_interval(memory_cluster):
    cluster, clock = memory_cluster
    stats = Statistics()
    stats.incr("creates", 2)
    publisher = Publisher(stats, interval=5.0, ttl=30, clock=clock)
    assert publisher.maybe_publish(cluster)
    assert not publisher.maybe_publish(cluster)
    clock.advance(4.9)
    assert not publisher.maybe_publish(cluster)
    clock.advance(0.2)
    stats.incr("creates")
    assert publisher.maybe_publish(cluster)
    key = stats_key("shop_", publish.instance_name())
    for store in cluster.registry.stores.values():
        assert [op for op, k in store.calls if k == key] == ["set", "set"]
    found = read_published(cluster, cluster.registry.nodes, clock.time())
    assert [(f.instance, f.counters) for f in found] == [(publish.instance_name(), {"creates": 3})]


def test_figures_of_a_process_that_stopped_publishing_expire(memory_cluster):
    cluster, clock = memory_cluster
    Publisher(Statistics(), ttl=30, clock=clock).publish(cluster)
    assert len(read_published(cluster, cluster.registry.nodes, clock.time())) == 1
    clock.advance(31)
    assert read_published(cluster, cluster.registry.nodes, clock.time()) == []


def test_index_rewrite_waits_for_its_lock(memory_cluster):
    cluster, clock = memory_cluster
    for store in cluster.registry.stores.values():
        assert store.add(stats_key("shop_", "index.lock"), b"1", 2)
    publisher = Publisher(Statistics(), interval=1.0, ttl=30, clock=clock)
    publisher.publish(cluster)
    assert read_published(cluster, cluster.registry.nodes, clock.time()) == []  # not listed yet
    clock.advance(3)  # the other writer's lock expired
    publisher.publish(cluster)
    assert len(read_published(cluster, cluster.registry.nodes, clock.time())) == 1


def test_a_down_node_is_skipped_and_the_newest_copy_wins(memory_cluster):
    cluster, clock = memory_cluster
    n1, n2 = cluster.registry.nodes
    stats = Statistics()
    publisher = Publisher(stats, clock=clock)
    publisher.publish(cluster)
    cluster.registry.stores[n2].down = True
    stats.incr("saves")
    clock.advance(5)
    assert publisher.publish(cluster) == 1
    cluster.registry.stores[n2].down = False  # n2 still holds the older figures
    found = read_published(cluster, cluster.registry.nodes, clock.time())
    assert [f.counters for f in found] == [{"saves": 1}]


def test_unreadable_figures_are_ignored(memory_cluster, caplog):
    cluster, clock = memory_cluster
    Publisher(Statistics(), clock=clock).publish(cluster)
    for store in cluster.registry.stores.values():
        store.set(stats_key("shop_", publish.instance_name()), b"{not json", 30)
    assert read_published(cluster, cluster.registry.nodes, clock.time()) == []
    assert "unreadable statistics" in caplog.text


# -- real nodes and real processes ---------------------------------------------------------------
CHILD = textwrap.dedent("""
    import os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django.test import override_settings
    override_settings(DJANGO_MSM={"MEMCACHED_NODES": sys.argv[1]}).enable()
    from django.core.signals import request_finished
    from django_msm.ops import publish
    from django_msm.session import SessionStore
    keys = []
    for number in range(int(sys.argv[2])):
        store = SessionStore()
        store["n"] = number
        store.save()
        keys.append(store.session_key)
    for key in keys:
        assert SessionStore(key)["n"] is not None
    publish.connect()
    request_finished.send(sender=None)  # the end of a request: publishes (first time is due)
    print(publish.instance_name())
""")


def run_app_process(spec: str, sessions: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", CHILD, spec, str(sessions)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
def test_statistics_of_two_app_processes_show_up_summed(memcached_nodes):
    servers = memcached_nodes(2)
    spec = ",".join(server.spec for server in servers)
    names = [run_app_process(spec, 3), run_app_process(spec, 5)]
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec}):
        out = StringIO()
        call_command("msm_status", "--json", stdout=out)
        text = StringIO()
        call_command("msm_status", stdout=text)
    stats = json.loads(out.getvalue())["statistics"]
    instances = {item["instance"]: item for item in stats["instances"]}
    assert sorted(instances) == sorted(names)
    assert [instances[name]["counters"]["creates"] for name in names] == [3, 5]
    assert [instances[name]["counters"]["loads_primary"] for name in names] == [3, 5]
    summed = {
        counter: sum(item["counters"].get(counter, 0) for item in instances.values())
        for item in instances.values() for counter in item["counters"]
    }
    assert stats["total"]["counters"] == summed
    assert stats["total"]["counters"]["creates"] == 8
    assert stats["total"]["timings"]["load"]["count"] == 8
    assert "Statistics: 2 instances" in text.getvalue()
    assert any(line.split()[:2] == ["creates", "8"] for line in text.getvalue().splitlines())


@pytest.mark.integration
def test_the_end_of_a_request_publishes(memcached_nodes, monkeypatch):
    servers = memcached_nodes(1)
    monkeypatch.setattr(publish, "publisher", Publisher())
    publish.connect()
    try:
        with override_settings(DJANGO_MSM={"MEMCACHED_NODES": servers[0].spec}):
            Client().get("/visit/")
            cluster = get_cluster()
            found = read_published(cluster, cluster.registry.nodes, cluster.clock.time())
    finally:
        request_finished.disconnect(dispatch_uid="django_msm.ops.publish")
    assert [figures.instance for figures in found] == [publish.instance_name()]
    assert found[0].counters.get("creates", 0) >= 1
