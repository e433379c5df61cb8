"""``python -m bench.engine``: issue 14's table alone, in well under two minutes.

The engine section of ``make bench`` (``bench/engine_section.py``): django_msm's ``SessionStore``
called directly against Django's ``cache`` engine on PyMemcacheCache and on django-redis, each
keeping its connection. It starts its own memcached and redis-server processes, prints the
table and writes nothing. ``--profile SHAPE`` instead runs cProfile over one engine's
operations and prints where the time goes, django_msm's own functions last.

    python -m bench.engine                                  # the table (about a minute)
    python -m bench.engine --quick                          # fewer rounds, for a glance
    python -m bench.engine --profile read                   # msm, 1 KB session
    python -m bench.engine --profile modify --size 65536 --engine msm-redis --count 500
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from . import app, engine_section, phases
from .profile import report
from .run import running

PROFILED = ("msm", engine_section.STICKY, engine_section.ORJSON, "msm-redis", "django",
            "django-redis")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engine",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and operations")
    parser.add_argument("--rounds", type=int, help="rounds of each interleaving")
    parser.add_argument("--count", type=int,
                        help="operations per batch at 1 KB (or per profile: default 2000)")
    parser.add_argument("--profile", choices=sorted(app.SHAPES),
                        help="profile one operation instead of measuring the table")
    parser.add_argument("--engine", default="msm", choices=PROFILED,
                        help="engine to profile (default msm)")
    parser.add_argument("--size", type=int, default=engine_section.SMALL,
                        help="session size to profile, in bytes (default 1024)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> phases.Plan:
    plan = phases.QUICK if args.quick else phases.Plan()
    if args.rounds:
        plan = dataclasses.replace(plan, engine_rounds=args.rounds)
    if args.count:
        plan = dataclasses.replace(plan, engine_count=args.count)
    return plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with running() as (servers, switch):
        if args.profile:
            clients = engine_section.clients(servers, switch)[args.engine]
            url, count = app.SHAPES[args.profile], args.count or 2000
            report(f"{args.engine} / {args.profile}, store called directly: {count} operations,"
                   f" session of {args.size} bytes", lambda n: clients.run(url, n, args.size),
                   count)
        else:
            results = engine_section.measure(servers, switch, make_plan(args))
            print("\n".join(line.rstrip() for line in engine_section.table(results)))
    print(f"run time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
