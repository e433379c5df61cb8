"""Prometheus exporter: the figures of ``msm_status`` as metrics (extra ``django-msm[prometheus]``).

Usage, a view of its own::

    path("metrics/msm", django_msm.ops.metrics.metrics_view)

or next to other collectors (also with prometheus-client's multiprocess mode)::

    registry.register(django_msm.ops.metrics.MsmCollector())

Why it is multiprocess-safe without ``PROMETHEUS_MULTIPROC_DIR``: statistics are read from what
app processes publish to the nodes (``publish.py``), not from the memory of whichever worker
answers the scrape, so every worker of a host exports the same figures. ``scope`` chooses whose:

* ``"host"`` (default): every process on this host, labelled ``process="host:pid"``; scrape every
  app host, nothing is counted twice;
* ``"cluster"``: every process of the cluster; scrape one target only;
* ``"process"``: this process's own live figures (single-process servers); no node is read.

Node state comes from a fresh probe of every node (in parallel, bounded by
``OPERATION_TIMEOUT``) and from this process's health view. Sessions are not counted at scrape
time: counting reads every item of a node, ``msm_status`` does it on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

try:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector, CollectorRegistry
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # the optional extra is not installed
    msg = "django_msm.ops.metrics needs prometheus-client: pip install 'django-msm[prometheus]'"
    raise ImportError(msg) from exc

from django.http import HttpRequest, HttpResponse

from ..core.stats import BUCKETS
from . import publish
from .status import ClusterStatus, NodeStatus, collect_status

PREFIX = "django_msm"
SCOPES = ("host", "cluster", "process")


def _own_figures() -> publish.Figures:
    counters, timings = publish.export(publish.statistics)
    return publish.Figures(publish.instance_name(), counters, timings)


def _select(status: ClusterStatus, scope: str) -> list[publish.Figures]:
    if scope == "process":
        return [_own_figures()]
    if scope == "cluster":
        return list(status.instances)
    host = publish.instance_name().rpartition(":")[0]
    return [f for f in status.instances if f.instance.rpartition(":")[0] == host]


def counter_families(instances: Iterable[publish.Figures]) -> Iterator[Metric]:
    """One counter family per statistics counter, one sample per process."""
    instances = list(instances)
    names = sorted({name for figures in instances for name in figures.counters})
    for name in names:
        family = CounterMetricFamily(
            f"{PREFIX}_{name}", f"django_msm statistics counter {name}", labels=["process"]
        )
        for figures in instances:
            if name in figures.counters:
                family.add_metric([figures.instance], figures.counters[name])
        yield family


def histogram_families(instances: Iterable[publish.Figures]) -> Iterator[Metric]:
    """One histogram family per timing, with the fixed buckets of ``stats.BUCKETS``."""
    instances = list(instances)
    names = sorted({name for figures in instances for name in figures.timings})
    for name in names:
        unit = "bytes" if name.endswith("size") else "seconds"
        family = HistogramMetricFamily(
            f"{PREFIX}_{name}_{unit}", f"django_msm statistics timing {name}", labels=["process"]
        )
        for figures in instances:
            timing = figures.timings.get(name)
            if timing is None:
                continue
            cumulative, buckets = 0, []
            for bound, number in zip((*BUCKETS, float("inf")), timing.buckets, strict=True):
                cumulative += number
                buckets.append((floatToGoString(float(f"{bound:.6g}")), cumulative))
            family.add_metric([figures.instance], buckets, timing.sum)
        yield family


def _gauge(
    name: str, doc: str, nodes: Iterable[NodeStatus], value: Callable[[NodeStatus], float | None]
) -> Metric:
    family = GaugeMetricFamily(f"{PREFIX}_node_{name}", doc, labels=["node"])
    for node in nodes:
        figure = value(node)
        if figure is not None:
            family.add_metric([node.label], figure)
    return family


def node_families(nodes: Iterable[NodeStatus]) -> Iterator[Metric]:
    """Node state as gauges: a fresh probe and this process's health view."""
    nodes = list(nodes)
    up = GaugeMetricFamily(
        f"{PREFIX}_node_up", "1 if the node answered a fresh probe",
        labels=["node", "address", "kind", "role"],
    )
    for node in nodes:
        up.add_metric([node.label, node.address, node.kind, node.role], int(node.probe.up))
    yield up
    yield _gauge("quarantined", "1 if this process skips the node", nodes,
                 lambda n: int(n.process_view in ("quarantined", "dead")))
    yield _gauge("latency_seconds", "median round trip of the probe", nodes,
                 lambda n: None if n.probe.latency_ms is None else n.probe.latency_ms / 1000)
    yield _gauge("items", "items the node holds", nodes, lambda n: n.probe.items)
    yield _gauge("memory_used_bytes", "memory the node uses", nodes, lambda n: n.probe.memory_used)
    yield _gauge("memory_limit_bytes", "memory the node may use", nodes,
                 lambda n: n.probe.memory_limit)
    evictions = CounterMetricFamily(
        f"{PREFIX}_node_evictions", "items the node evicted", labels=["node"]
    )
    for node in nodes:
        if node.probe.evictions is not None:
            evictions.add_metric([node.label], node.probe.evictions)
    yield evictions


class MsmCollector(Collector):
    """Collect node state and statistics at scrape time (see the module docstring)."""

    def __init__(self, scope: str = "host"):
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
        self.scope = scope

    def describe(self) -> list[Metric]:
        # Nothing up front: describing would probe the nodes when the collector is registered.
        return []

    def collect(self) -> Iterator[Metric]:
        if self.scope != "process":
            publish.publisher.maybe_publish()  # this process's own figures, if due
        status = collect_status(count=False, statistics=self.scope != "process")
        instances = _select(status, self.scope)
        yield from node_families(status.nodes)
        yield from counter_families(instances)
        yield from histogram_families(instances)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(MsmCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
