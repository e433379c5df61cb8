"""``make bench``: per-request cost of django_msm next to Django's and django-redis's engines.

Starts eight memcached and two redis-server processes on free loopback ports, configures Django
in this process with every engine on those same processes, measures them in interleaved rounds
(the session store called directly against each peer's best set-up, issue 14; then through the
request cycle: non-sticky, sticky and locked on memcached; Redis; 2/4/8 nodes; 1 KB to 512 KB
sessions; threads; the raw client floor), prints the tables, writes ``docs/benchmarks.md`` and
the plot ``docs/bench-latency-by-size.png``, and stops the servers. It is a report, not a test:
the exit status is 0 whether targets are met or not, and non-zero only when the harness itself
fails (a request answered with the wrong status, a server that did not start).

    python -m bench.run                       # the full report (a few minutes)
    python -m bench.run --quick               # every table from fewer rounds (about a minute)
    python -m bench.run --quick --only main,redis --output ''
    python -m bench.run --profile modify --engine msm-sticky   # cProfile of one request shape
    python -m bench.engine                    # the engine section alone (bench/engine.py)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import django
from django.conf import settings

from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess

from . import app, docs, engine_section, phases, plot, report, sections
from .engines import Switch, build_engines, cache_settings
from .measure import EngineClients
from .results import Results

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
PLOT_NAME = "bench-latency-by-size.png"
PHASES = ("engine", "main", "redis", "nodes", "sizes", "threads")
REQUEST_PHASES: dict[str, Callable[[phases.Bench, phases.Plan], Results]] = {
    "main": phases.main_phase, "redis": phases.redis_phase, "nodes": phases.node_phase,
    "sizes": phases.size_phase, "threads": phases.thread_phase,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    parser.add_argument("--rounds", type=int, help="rounds of the main and Redis phases")
    parser.add_argument("--count", type=int, help="requests per batch of the main phases")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"comma-separated phases to run (default: all of {','.join(PHASES)})")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="markdown report (the plot goes beside it); '' to skip")
    parser.add_argument("--profile", choices=sorted(app.SHAPES),
                        help="profile one shape instead of benchmarking")
    parser.add_argument("--engine", default="msm", help="engine to profile (default msm)")
    parser.add_argument("--size", type=int, help="profile a session of about SIZE bytes")
    args = parser.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {PHASES}")
    return args


def make_plan(args: argparse.Namespace) -> phases.Plan:
    plan = phases.QUICK if args.quick else phases.Plan()
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds, redis_rounds=args.rounds)
    if args.count:
        plan = dataclasses.replace(plan, count=args.count)
    return plan


class Servers:
    """The memcached and redis-server processes of one run, stopped whatever happens."""

    def __init__(self) -> None:
        self.memcached: list[MemcachedProcess] = []
        self.redis: list[RedisProcess] = []

    def start(self) -> Servers:
        for number in range(1, 9):
            self.memcached.append(MemcachedProcess(f"n{number}").start())
        for number in (1, 2):
            self.redis.append(RedisProcess(f"r{number}").start())
        return self

    def stop(self) -> None:
        for server in (*self.memcached, *self.redis):
            server.stop()

    def configure(self) -> None:
        locations = [f"127.0.0.1:{node.port}" for node in self.memcached]
        caches = cache_settings(locations, [node.url for node in self.redis])
        msm_nodes = ",".join(node.spec for node in self.memcached[:2])
        settings.configure(**app.django_settings(caches, msm_nodes))
        django.setup()


def request_bench(servers: Servers, switch: Switch) -> phases.Bench:
    """Every request-cycle engine with its test clients (each creates its sessions now)."""
    engines = build_engines([n.spec for n in servers.memcached], [n.spec for n in servers.redis])
    clients = {name: EngineClients(engine, switch) for name, engine in engines.items()}
    return phases.Bench(clients, [n.port for n in servers.memcached],
                        [n.port for n in servers.redis])


def run_phases(args: argparse.Namespace, servers: Servers, switch: Switch
               ) -> dict[str, Results]:
    plan, collected = make_plan(args), {}
    bench: phases.Bench | None = None
    try:
        for name in args.only:
            started = time.monotonic()
            if name == "engine":
                collected[name] = engine_section.measure(servers, switch, plan)
            else:
                bench = bench or request_bench(servers, switch)
                collected[name] = REQUEST_PHASES[name](bench, plan)
            print(f"phase {name}: {time.monotonic() - started:.0f} s", flush=True)
    finally:
        if bench is not None:
            bench.close()
    return collected


def _text(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines)


def render(results: dict[str, Results]) -> list[tuple[str, str]]:
    """(title, text table) per section, in report order, for the phases that ran."""
    out: list[tuple[str, str]] = []
    if "engine" in results:
        out.append(("Engine, store called directly (issue 14)",
                    _text(engine_section.table(results["engine"]))))
    main, redis = results.get("main"), results.get("redis")
    if main is not None:
        rounds = f"({main.rounds} rounds × {main.count} requests per engine and shape)"
        out.append(("Non-sticky (issue 2)", _text(
            [rounds, *report.headline(main), *report.stricter(main), "",
             *report.commands(main, ("django", "django-kept", "msm"))])))
        out.append(("Sticky (issue 3)", _text(
            [*report.sticky(main), "", *report.commands(main, ("msm-sticky",))])))
        out.append(("Locked (issue 4)", _text(
            [*report.locked(main), "", *report.commands(main, ("msm-mw", "msm-locked"))])))
    if redis is not None:
        rounds = f"({redis.rounds} rounds × {redis.count} requests per engine and shape)"
        out.append(("Redis (issue 5)", _text([rounds, *sections.redis(redis)])))
    if main is not None or redis is not None:
        out.append(("Floor", _text(sections.floor(main, redis))))
    if "nodes" in results:
        out.append(("Node count", _text(sections.nodes(results["nodes"]))))
    if "sizes" in results:
        out.append(("Session size", _text(sections.sizes(results["sizes"]))))
    if "threads" in results:
        out.append(("Threads", _text(sections.threads(results["threads"]))))
    return out


def report_all(args: argparse.Namespace, argv: list[str] | None, results: dict[str, Results],
               started: float, load_before: tuple[float, ...]) -> None:
    tables = render(results)
    for title, table in tables:
        print(f"\n== {title} ==\n{table}")
    if not args.output:
        return
    output = Path(args.output)
    plotted = "sizes" in results and plot.latency_by_size(results["sizes"],
                                                          output.parent / PLOT_NAME)
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        ["python -m bench.run", *(sys.argv[1:] if argv is None else argv)])
    facts = docs.machine(command, started, load_before)
    docs.write(output, facts, tables, PLOT_NAME if plotted else None)
    print(f"\nwritten to {output}" + (f" and {output.parent / PLOT_NAME}" if plotted else ""))
    print(f"run time {facts['run time']}")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: the servers are stopped


@contextlib.contextmanager
def running() -> Iterator[tuple[Servers, Switch]]:
    """The servers started and Django configured on them; everything stopped on the way out,
    SIGTERM included."""
    # django-redis 7's ShardClient warns when its own RedisCache passes `client=` through to it;
    # its API, not something a user of the session engine can change.
    warnings.filterwarnings("ignore", "[a-z_]+ on sharded client should not specify client")
    signal.signal(signal.SIGTERM, _terminate)
    servers, switch = Servers(), Switch()
    try:
        servers.start().configure()
        yield servers, switch
    finally:
        switch.close()
        servers.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, load_before = time.monotonic(), os.getloadavg()
    with running() as (servers, switch):
        if args.profile:
            from .profile import profile

            profile(args.engine, args.profile, args.count or 100, servers, switch, args.size)
        else:
            results = run_phases(args, servers, switch)
            report_all(args, argv, results, started, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
