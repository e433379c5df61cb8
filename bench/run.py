"""``make bench``: per-request cost of django_msm next to Django's ``cache`` session engine.

Starts two memcached processes on free loopback ports, configures Django in this process with
both engines on those same processes (django_msm: primary + backup over two nodes; Django:
``PyMemcacheCache`` over the same two), measures read-only, modifying and new-session requests
in interleaved rounds, prints the table, writes it to ``docs/bench-engine.md`` and stops the
servers. It is a report, not a test: the exit status is 0 whether targets are met or not.

    python -m bench.run                      # the full run (about a minute)
    python -m bench.run --rounds 5 --count 50 --output ''
    python -m bench.run --profile modify     # cProfile of django_msm on one request shape
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import django
import pymemcache
from django.conf import settings

from tests.servers import MemcachedProcess

from . import app, report
from .measure import EngineClients, Floor, ServerCounters, per_request

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "bench-engine.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (default 30)")
    parser.add_argument("--count", type=int, default=100,
                        help="requests per engine, shape and round (default 100)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="markdown file for the table; '' to skip")
    parser.add_argument("--profile", choices=sorted(app.SHAPES),
                        help="profile one shape instead of benchmarking")
    parser.add_argument("--engine", choices=sorted(app.ENGINES), default="msm",
                        help="engine to profile (default msm)")
    return parser.parse_args(argv)


def configure(nodes: list[MemcachedProcess]) -> None:
    locations = [f"127.0.0.1:{node.port}" for node in nodes]
    msm_nodes = ",".join(node.spec for node in nodes)
    settings.configure(**app.django_settings(locations, msm_nodes))
    django.setup()


def measure_batch(
    results: report.Results, clients: EngineClients, label: str, counters: ServerCounters
) -> None:
    gc.collect()
    before = counters.read()
    results.add_batch(clients.engine, label, clients.run(app.url(label), results.count))
    results.add_ops(clients.engine, label, per_request(before, counters.read(), results.count))


def run_rounds(rounds: int, count: int, nodes: list[MemcachedProcess]) -> report.Results:
    """Interleave engines within each round, alternating which one goes first."""
    engines = [EngineClients(name) for name in app.ENGINES]
    counters = ServerCounters(node.port for node in nodes)
    floor = Floor(nodes[0].port, json.dumps(app.session_content()).encode())
    results = report.Results(rounds, count)
    try:
        for clients in engines:  # warm-up: imports, pools, first connections
            for label in ("baseline", *app.SHAPES):
                clients.run(app.url(label), max(1, count // 5))
        for number in range(rounds):
            order = engines if number % 2 == 0 else engines[::-1]
            for label in ("baseline", *app.SHAPES):
                for clients in order:
                    measure_batch(results, clients, label, counters)
            results.add_batch("floor", "get", floor.get(count))
            results.add_batch("floor", "set", floor.set(count))
    finally:
        counters.close()
        floor.close()
    return results


def machine(argv: list[str] | None, nodes: list[MemcachedProcess]) -> dict[str, str]:
    """What the docs need to cite the figures: command, date, machine and versions."""
    args = sys.argv[1:] if argv is None else argv
    command = os.environ.get("BENCH_COMMAND") or " ".join(["python -m bench.run", *args])
    version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.strip()
    return {
        "command": f"`{command}`",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, nproc {os.cpu_count()}, {platform.system()} "
        f"{platform.release()}",
        "versions": f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"pymemcache {pymemcache.__version__}, {version}",
        "nodes": ", ".join(node.spec for node in nodes),
    }


def benchmark(args: argparse.Namespace, argv: list[str] | None,
              nodes: list[MemcachedProcess]) -> None:
    started = time.monotonic()
    results = run_rounds(args.rounds, args.count, nodes)
    ports = ", ".join(str(node.port) for node in nodes)
    table = report.render(results, f"×{len(nodes)} on 127.0.0.1 ports {ports}")
    print(table)
    print(f"\n({time.monotonic() - started:.0f} s)")
    if args.output:
        report.write_markdown(Path(args.output), table, machine(argv, nodes))
        print(f"written to {args.output}")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`: the servers are stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    nodes: list[MemcachedProcess] = []
    try:
        for node_id in ("n1", "n2"):
            nodes.append(MemcachedProcess(node_id).start())
        configure(nodes)
        if args.profile:
            from .profile import profile

            profile(args.engine, args.profile, args.count)
        else:
            benchmark(args, argv, nodes)
    finally:
        for node in nodes:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
