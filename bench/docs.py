"""``docs/benchmarks.md``: the report's tables with how, when and where they were measured."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import django

METHOD = """\
How it is measured: every request goes through `django.test.Client`, i.e. the WSGI handler, the
engine's session middleware and the `request_started`/`request_finished` signals (Django closes
its cache connections on `request_finished`, so each request of the stock memcached `cache`
engine opens a new connection, as it does in production; django-redis keeps its pool unless
`DJANGO_REDIS_CLOSE_CONNECTION` is set). All engines run in one process, on the same memcached
and redis-server processes, with the same session content (auth keys and a three-item cart). Each
round measures the engines of a section back to back in short batches, alternating which goes
first; a ratio is taken per round and the tables show its median and interquartile range (IQR);
a batch counts by its median request, so a request that lost the CPU to another process does not
move it ("by mean" uses batch means instead). Machines are shared and noisy: compare ratios, not
absolute times. django_msm keeps one node registry per process; to interleave several
configurations in one process the benchmark keeps one registry per configuration and swaps it
in for that configuration's batches, so each finds its own warm pools and local copies, as a
worker of that configuration would.

Engines: `django` is `django.contrib.sessions.backends.cache` over `PyMemcacheCache` on the same
nodes; `django-kept` is the same with its cache's `close()` a no-op for its requests (not a stock
set-up: it shows how much of the stock engine's cost is reconnecting); `msm` is django_msm
non-sticky under Django's stock `SessionMiddleware` (the issue 2 set-up); `msm-mw` the same under
`django_msm.middleware.SessionMiddleware`; `msm-sticky` adds `STICKY=True` with
`ROUTE="bench"` (so the host's version table vouches for local copies), `msm-locked`
`LOCKING_MODE="all"` (both with django_msm's middleware); `django-redis` is Django's cache session
engine over `django_redis.cache.RedisCache` (`ShardClient` over both Redis nodes, as
`PyMemcacheCache` shards over memcached nodes); `msm-redis` is django_msm on `id:redis://` nodes.

The engine section (issue 14) leaves the request cycle out: each engine's `SessionStore` is
called directly in one process, doing what a request does to it (the view's reads or writes,
then what Django's `SessionMiddleware` asks at the end: `accessed`, `modified`, `is_empty()`, the
expiry, `save()` when modified). Nothing fires `request_finished` there, so Django's cache client
keeps its connection (the servers' connection counters are checked: a peer that reconnected
fails the run): each peer is at its best. django_msm runs as a user would configure it, on two
nodes (it writes a backup copy), defaults otherwise; `msm-sticky-noroute` adds `STICKY=True`
without a `ROUTE`, `msm-orjson` the optional `SESSION_SERIALIZER`
`django_msm.serializers.OrjsonSerializer`. Three interleavings (memcached 1 KB, memcached 64 KB,
Redis 1 KB) alternate their engines round by round; sessions created in a round are deleted
after it, outside the batches. `python -m bench.engine` prints this table alone in about a
minute, and `python -m bench.engine --profile SHAPE [--engine NAME] [--size BYTES]` profiles one
operation.
"""

NOTES = """\
Reading the tables. Django's memcached engine reads before it writes (`save` checks that the
session still exists) and reconnects on every request; django_msm writes with `replace`/`add`
(or meta `ms`), which check existence in the same round trip, and writes the backup copy on the
second node. In sticky mode a read sends only `mg <key> c` (the item's CAS, no payload) and a
modifying request writes both node copies. A locked request adds the lock (`ms … ME`, one round
trip) before the load and its compare-and-delete release (`md … C<cas>`) after the save;
`lock_wait` percentiles are bucket upper bounds of django_msm's histogram (1-2-5 steps), the
mean is exact. Sizes: the session is padded with a base64 attribute of random bytes, which zlib
(django_msm compresses values from `COMPRESS_MIN_SIZE`, 4 KB) shrinks by only a quarter: this is
zlib's worst case (about 24 µs per KB at level 1 on this machine, against about 2 µs per KB on
ordinary JSON), so the large-session rows are an upper bound for django_msm; Django's engine and
django-redis never compress. memcached's item limit is 1 MB and `MAX_SESSION_SIZE` defaults to
1,000,000 bytes. Threads share one process and its GIL, so they show contention in the engine
(pools, locks), not the machine's capacity.

Targets: issue 14 (store called directly, peers keeping their connection) read ≤ 0.9×,
modify ≤ 0.9×, create ≤ 1.0× of Django's engine on memcached at 1 KB; ≤ 1.0× of django-redis;
at 64 KB read ≤ 1.0×, modify and create ≤ 1.5×; sticky without a route read ≤ 0.5×.
Issue 2 (non-sticky, memcached) read ≤ 1.0×, modify ≤ 1.2×, create ≤ 1.2× of Django's
engine; issue 3 (sticky, warm local copy) read ≤ 0.5×, modify ≤ 1.2×. The Redis table applies
issue 2's targets against django-redis for reference only.
"""


def _command_version(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "?"


def _package(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} (not installed)"


def machine(command: str, started: float, load_before: tuple[float, ...]) -> dict[str, str]:
    """What the docs need to cite the figures: command, date, machine, load and versions."""
    redis_version = _command_version(["redis-server", "--version"]).split(" sha=")[0]
    packages = ", ".join(_package(name) for name in
                         ("pymemcache", "redis", "django-redis", "matplotlib"))
    load_after = os.getloadavg()
    return {
        "command": f"`{command}`",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, nproc {os.cpu_count()}, {platform.system()} "
        f"{platform.release()}",
        "load average (1, 5, 15 min)": f"{_load(load_before)} at the start, "
        f"{_load(load_after)} at the end",
        "versions": f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"{packages}, {_command_version(['memcached', '-V'])}, {redis_version}",
        "run time": f"{time.monotonic() - started:.0f} s",
    }


def _load(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def write(path: Path, facts: dict[str, str], sections: list[tuple[str, str]],
          plot: str | None) -> None:
    """Write the report: facts, method, then one heading and text table per section."""
    lines = [
        "# Benchmarks: django_msm next to Django's cache engine and django-redis",
        "",
        "Generated by `bench/run.py`; every run of `make bench` rewrites this file and",
        "`bench-latency-by-size.png`. `python -m bench.run --quick` is a short development run;",
        "`python -m bench.run --profile SHAPE --engine NAME [--size BYTES]` shows where a",
        "request's time goes; `python -m bench.engine` measures the engine section alone.",
        "",
        *(f"- {name}: {value}" for name, value in facts.items()),
        "",
        METHOD,
        NOTES,
    ]
    for title, table in sections:
        lines += [f"## {title}", "", "```text", table, "```", ""]
        if title.startswith("Session size") and plot:
            lines += [f"![median latency by session size]({plot})", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
