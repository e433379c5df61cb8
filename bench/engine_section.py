"""The engine section (issue 14): django_msm's ``SessionStore`` against each peer's best set-up.

Every store is called directly in one process (``bench/direct.py``), so the peers keep their
connections: Django's ``cache`` engine on ``PyMemcacheCache`` over the same two memcached nodes,
and on django-redis (``ShardClient`` over the same two redis-server processes). django_msm is
configured as a user would: two nodes (so it writes a backup copy), defaults otherwise; the
sticky row adds ``STICKY=True`` without a ``ROUTE``, the orjson rows the optional
``OrjsonSerializer``. Three interleavings share the round count: memcached 1 KB (Django, msm,
msm sticky, msm orjson), memcached 64 KB (Django, msm, msm orjson) and Redis 1 KB
(django-redis, msm-redis); in each, the engines alternate their order round by round, so a ratio
compares batches taken moments apart. The raw client round trips are measured in the same rounds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import app, phases
from .direct import StoreClients
from .engines import Engine, Switch, build_engines
from .measure import BenchError
from .report import SHAPES
from .results import Results, summary

if TYPE_CHECKING:
    from .run import Servers

SMALL, BIG = 1024, 64 * 1024
STICKY = "msm-sticky-noroute"
ORJSON = "msm-orjson"
MEMCACHED = ("django", "msm", STICKY, ORJSON)
LARGE = ("django", "msm", ORJSON)
REDIS = ("django-redis", "msm-redis")
ORJSON_SERIALIZER = "django_msm.serializers.OrjsonSerializer"
PEERS = ("django", "django-redis")  # must keep their connection: checked on the servers


@dataclass(frozen=True)
class Row:
    """One line of issue 14's table: ``engine`` over ``peer``, a target per shape (None: shown
    for information)."""

    title: str
    engine: str
    peer: str
    size: int
    targets: Mapping[str, float | None] = dataclasses.field(hash=False)

    def label(self, shape: str) -> str:
        return label(shape, self.size)


ROWS = (
    Row("memcached 1 KB", "msm", "django", SMALL, {"read": 0.9, "modify": 0.9, "create": 1.0}),
    Row("Redis 1 KB", "msm-redis", "django-redis", SMALL, dict.fromkeys(SHAPES, 1.0)),
    Row("memcached 64 KB", "msm", "django", BIG, {"read": 1.0, "modify": 1.5, "create": 1.5}),
    Row("sticky, no ROUTE", STICKY, "django", SMALL, {"read": 0.5, "modify": None, "create": None}),
    Row("orjson 1 KB", ORJSON, "django", SMALL, {"read": 0.9, "modify": 0.9, "create": 1.0}),
    Row("orjson 64 KB", ORJSON, "django", BIG, {"read": 1.0, "modify": 1.5, "create": 1.5}),
)


def label(shape: str, size: int) -> str:
    """1 KB cells carry the bare shape name, larger ones ``shape@size``."""
    return shape if size == SMALL else f"{shape}@{size}"


def build(memcached: list[str], redis: list[str]) -> dict[str, Engine]:
    """The section's engines, taken from the request-cycle set so the settings stay one list.
    Nothing closes a cache client here (no request, no ``request_finished``): ``django`` keeps
    its connection without the ``django-kept`` patch."""
    known = build_engines(memcached, redis)
    picked = {name: known[name] for name in ("django", "msm", "django-redis", "msm-redis")}
    msm = known["msm"]
    picked[STICKY] = dataclasses.replace(msm, name=STICKY, msm={**(msm.msm or {}), "STICKY": True})
    picked[ORJSON] = dataclasses.replace(msm, name=ORJSON, serializer=ORJSON_SERIALIZER)
    return picked


def clients(servers: Servers, switch: Switch) -> dict[str, StoreClients]:
    engines = build([n.spec for n in servers.memcached], [n.spec for n in servers.redis])
    return {name: StoreClients(engine, switch) for name, engine in engines.items()}


def _cells(count: int, size: int) -> list[phases.Cell]:
    return [phases.Cell(label(shape, size), app.SHAPES[shape], count, size) for shape in SHAPES]


def _between_rounds(bench: phases.Bench, engines: tuple[str, ...], kind: str, size: int,
                    count: int) -> Callable[[Results], None]:
    """After each round: delete the round's new sessions, then time the raw client floor."""
    value = json.dumps(app.session_content(size)).encode()
    suffix = "" if size == SMALL else f"@{size}"

    def after(results: Results) -> None:
        for name in engines:
            bench.clients[name].cleanup()  # type: ignore[attr-defined]
        bench.floor(kind, results, value, count, suffix)

    return after


def measure(servers: Servers, switch: Switch, plan: phases.Plan) -> Results:
    """Run the three interleavings; fail if a peer reconnected (it would not be at its best)."""
    bench = phases.Bench(clients(servers, switch), [n.port for n in servers.memcached],
                         [n.port for n in servers.redis])
    rounds, small, big = plan.engine_rounds, plan.engine_count, plan.engine_big_count
    try:
        results = bench.interleave(
            MEMCACHED, _cells(small, SMALL), rounds,
            each_round=_between_rounds(bench, MEMCACHED, "memcached", SMALL, small))
        results.absorb(bench.interleave(
            LARGE, _cells(big, BIG), rounds,
            each_round=_between_rounds(bench, LARGE, "memcached", BIG, big)))
        results.absorb(bench.interleave(
            REDIS, _cells(small, SMALL), rounds,
            each_round=_between_rounds(bench, REDIS, "redis", SMALL, small)))
    finally:
        bench.close()
    for peer in PEERS:
        for shape in SHAPES:
            if connections(results, peer, label(shape, SMALL)) > 0:
                raise BenchError(f"{peer} opened connections during {shape}: not its best set-up")
    return results


def connections(results: Results, engine: str, cell: str) -> float:
    """Connections the servers accepted per operation of ``engine`` (0 when it keeps them)."""
    return results.ops_per_request(engine, cell).get("connect", 0.0)


def _row(results: Results, row: Row, shape: str) -> str:
    cell = row.label(shape)
    ratios = results.ratios(cell, engine=row.engine, against=row.peer)
    ratio, low, high = summary(ratios)
    peer, mine = results.median(row.peer, cell), results.median(row.engine, cell)
    target = row.targets[shape]
    goal = "–       –" if target is None else \
        f"≤{target:.1f}×   {'met' if ratio <= target else 'not met'}"
    return (f"{row.title:<16}  {shape:<6}  {peer:7.1f}  {mine:6.1f}  {mine - peer:+8.1f}  "
            f"{ratio:5.2f}×  {low:.2f}–{high:.2f}  {min(ratios):.2f}–{max(ratios):.2f}  {goal}")


def _floors(results: Results) -> list[str]:
    lines = ["Floor: raw client round trips on node 1, open connection, the session's JSON:"]
    for kind, client, size in (("memcached", "pymemcache", SMALL), ("memcached", "pymemcache", BIG),
                               ("redis", "redis-py", SMALL)):
        name, suffix = f"floor-{kind}", "" if size == SMALL else f"@{size}"
        get, put = results.median(name, f"get{suffix}"), results.median(name, f"set{suffix}")
        read = [results.median(engine, label("read", size)) - get for engine in
                (REDIS if kind == "redis" else LARGE)]
        lines.append(f"  {client:<10} {size // 1024:>2} KB: get {get:6.1f} µs, set {put:6.1f} µs;"
                     f"  a read above the get: peer {read[0]:+.1f} µs, msm {read[1]:+.1f} µs")
    return lines


def _commands(results: Results) -> list[str]:
    lines = ["Commands per operation, from the servers' own counters (memcached: store = set/add/",
             "replace/ms; Redis: INFO commandstats; connect = connections accepted):"]
    for shape in SHAPES:
        for engine in (*MEMCACHED, *REDIS):
            ops = results.ops_per_request(engine, shape)
            text = ", ".join(f"{name} {value:.1f}" for name, value in sorted(ops.items())
                             if value >= 0.05)
            lines.append(f"  {shape:<6}  {engine:<18}  {text or '–'}")
    opened = ", ".join(
        f"{engine} {max(connections(results, engine, shape) for shape in SHAPES):.2f}"
        for engine in (*MEMCACHED, *REDIS))
    return [*lines, f"Connections accepted per operation, worst 1 KB cell: {opened}"]


def table(results: Results) -> list[str]:
    """Issue 14's table: median per-round ratio, its IQR and range, target and verdict."""
    small, big = results.counts["read"], results.counts[label("read", BIG)]
    lines = [
        f"({results.rounds} rounds × {small} operations per engine and cell at 1 KB, {big} at "
        "64 KB; a ratio is the",
        "median of per-round ratios of batch medians, with its IQR and min–max over the rounds)",
        "row               op      peer µs  msm µs  msm−peer  ratio  IQR        min–max    "
        "target  verdict",
    ]
    for row in ROWS:
        lines += [_row(results, row, shape) for shape in row.targets]
    return [*lines, "", *_floors(results), "", *_commands(results)]
