"""Issue 6: the Prometheus exporter exports the figures of ``msm_status``.

The exposition of the hand-built status of ``test_msm_status`` is compared exactly; the collector
is then run against real memcached nodes with figures published by this process, by a
pretended other host, and by two real app processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory, override_settings
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from django_msm.core.stats import BUCKETS, Statistics
from django_msm.ops import metrics, publish
from django_msm.ops.publish import Publisher
from tests.test_msm_status import fixture_status
from tests.test_publish import run_app_process

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_HEAD = """\
# HELP django_msm_node_up 1 if the node answered a fresh probe
# TYPE django_msm_node_up gauge
django_msm_node_up{address="127.0.0.1:11211",kind="memcached",node="n1",role="regular"} 1.0
django_msm_node_up{address="127.0.0.1:11212",kind="memcached",node="n2",role="regular"} 0.0
django_msm_node_up{address="redis://10.0.0.3:6379/0",kind="redis",node="n3",role="failover"} 1.0
# HELP django_msm_node_quarantined 1 if this process skips the node
# TYPE django_msm_node_quarantined gauge
django_msm_node_quarantined{node="n1"} 0.0
django_msm_node_quarantined{node="n2"} 1.0
django_msm_node_quarantined{node="n3"} 0.0
# HELP django_msm_node_latency_seconds median round trip of the probe
# TYPE django_msm_node_latency_seconds gauge
django_msm_node_latency_seconds{node="n1"} 0.00025
django_msm_node_latency_seconds{node="n3"} 0.0015
# HELP django_msm_node_items items the node holds
# TYPE django_msm_node_items gauge
django_msm_node_items{node="n1"} 42.0
django_msm_node_items{node="n3"} 10.0
# HELP django_msm_node_memory_used_bytes memory the node uses
# TYPE django_msm_node_memory_used_bytes gauge
django_msm_node_memory_used_bytes{node="n1"} 1.572864e+06
django_msm_node_memory_used_bytes{node="n3"} 6.291456e+07
# HELP django_msm_node_memory_limit_bytes memory the node may use
# TYPE django_msm_node_memory_limit_bytes gauge
django_msm_node_memory_limit_bytes{node="n1"} 6.7108864e+07
django_msm_node_memory_limit_bytes{node="n3"} 6.7108864e+07
# HELP django_msm_node_evictions_total items the node evicted
# TYPE django_msm_node_evictions_total counter
django_msm_node_evictions_total{node="n1"} 0.0
django_msm_node_evictions_total{node="n3"} 3.0
# HELP django_msm_creates_total django_msm statistics counter creates
# TYPE django_msm_creates_total counter
django_msm_creates_total{process="web1:101"} 3.0
django_msm_creates_total{process="web2:202"} 5.0
# HELP django_msm_loads_primary_total django_msm statistics counter loads_primary
# TYPE django_msm_loads_primary_total counter
django_msm_loads_primary_total{process="web1:101"} 10.0
# HELP django_msm_saves_total django_msm statistics counter saves
# TYPE django_msm_saves_total counter
django_msm_saves_total{process="web2:202"} 1.0
# HELP django_msm_load_seconds django_msm statistics timing load
# TYPE django_msm_load_seconds histogram
"""


class FixtureCollector(Collector):
    def collect(self):
        status = fixture_status()
        yield from metrics.node_families(status.nodes)
        yield from metrics.counter_families(status.instances)
        yield from metrics.histogram_families(status.instances)


def exposition(collector: Collector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_exposition_of_the_fixture_is_exact():
    text = exposition(FixtureCollector())
    assert text.startswith(EXPECTED_HEAD)
    lines = text.splitlines()
    assert 'django_msm_load_seconds_bucket{le="0.0005",process="web1:101"} 1.0' in lines
    assert 'django_msm_load_seconds_bucket{le="0.001",process="web1:101"} 2.0' in lines
    assert 'django_msm_load_seconds_bucket{le="0.002",process="web2:202"} 0.0' in lines
    assert 'django_msm_load_seconds_bucket{le="0.005",process="web2:202"} 1.0' in lines
    assert 'django_msm_load_seconds_bucket{le="+Inf",process="web2:202"} 1.0' in lines
    assert 'django_msm_load_seconds_sum{process="web1:101"} 0.0015' in lines
    assert 'django_msm_serialized_size_bytes_count{process="web2:202"} 2.0' in lines
    assert 'django_msm_serialized_size_bytes_bucket{le="200.0",process="web2:202"} 2.0' in lines
    buckets = [line for line in lines if line.startswith("django_msm_load_seconds_bucket")]
    assert len(buckets) == 2 * (len(BUCKETS) + 1)


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope must be one of"):
        metrics.MsmCollector("everything")


def test_the_module_says_which_extra_it_needs():
    code = "import sys; sys.modules['prometheus_client'] = None; import django_msm.ops.metrics"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "pip install 'django-msm[prometheus]'" in result.stderr


# -- real nodes ----------------------------------------------------------------------------------
def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def publish_as(registry, name: str, counters: dict[str, int], monkeypatch) -> None:
    stats = Statistics()
    for counter, value in counters.items():
        stats.incr(counter, value)
    with monkeypatch.context() as patch:
        patch.setattr(publish, "instance_name", lambda: name)
        Publisher(stats).publish(registry)


@pytest.mark.integration
def test_collector_exports_node_state_and_this_hosts_processes(memcached_nodes, monkeypatch):
    servers = memcached_nodes(2)
    spec = ",".join(server.spec for server in servers)
    monkeypatch.setattr(publish, "publisher", Publisher())
    own = publish.instance_name()
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 0.5}):
        from django_msm.runtime import get_cluster

        host = own.rpartition(":")[0]
        publish.statistics.incr("metrics_host_marker", 2)  # this process publishes when scraped
        publish_as(get_cluster(), f"{host}:999999", {"creates": 4}, monkeypatch)
        publish_as(get_cluster(), "elsewhere:1", {"creates": 9}, monkeypatch)
        servers[1].kill()
        host_text = exposition(metrics.MsmCollector())
        cluster_text = exposition(metrics.MsmCollector("cluster"))
        response = metrics.metrics_view(RequestFactory().get("/metrics"))
    found = samples(host_text)
    up = {dict(labels)["node"]: value for (name, labels), value in found.items()
          if name == "django_msm_node_up"}
    assert up == {"n1": 1.0, "n2": 0.0}
    creates = {labels: value for (name, labels), value in found.items()
               if name == "django_msm_creates_total"}
    assert creates[(("process", f"{host}:999999"),)] == 4.0
    assert (("process", "elsewhere:1"),) not in creates  # another host exports its own
    marker = ("django_msm_metrics_host_marker_total", (("process", own),))
    assert found[marker] == publish.export(publish.statistics)[0]["metrics_host_marker"]
    assert samples(cluster_text)[("django_msm_creates_total", (("process", "elsewhere:1"),))] == 9
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b'django_msm_node_up{address="127.0.0.1:' in response.content


@pytest.mark.integration
def test_figures_of_two_app_processes_are_exported(memcached_nodes):
    servers = memcached_nodes(2)
    spec = ",".join(server.spec for server in servers)
    names = [run_app_process(spec, 2), run_app_process(spec, 6)]
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec}):
        found = samples(exposition(metrics.MsmCollector("cluster")))
    assert [found[("django_msm_creates_total", (("process", name),))] for name in names] == [2, 6]
    assert [found[("django_msm_load_seconds_count", (("process", name),))] for name in names] == [
        2, 6,
    ]


@pytest.mark.integration
def test_process_scope_reads_live_figures(memcached_nodes):
    servers = memcached_nodes(1)
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": servers[0].spec}):
        publish.statistics.incr("metrics_test_marker", 3)
        found = samples(exposition(metrics.MsmCollector("process")))
    own = (("process", publish.instance_name()),)
    assert found[("django_msm_metrics_test_marker_total", own)] >= 3
    assert found[("django_msm_node_up", (("address", f"127.0.0.1:{servers[0].port}"),
                                         ("kind", "memcached"), ("node", "n1"),
                                         ("role", "regular")))] == 1.0


def test_registering_the_collector_does_not_probe(monkeypatch):
    calls = []
    monkeypatch.setattr(metrics, "collect_status", lambda **kwargs: calls.append(kwargs))
    CollectorRegistry(auto_describe=True).register(metrics.MsmCollector())
    assert calls == []
