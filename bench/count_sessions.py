"""``make bench-count``: time and memory of ``msm_status`` counting 1,000,000 sessions on 2 nodes.

Starts two memcached processes on free loopback ports and writes, with pipelined ``set noreply``
on a plain socket, items of the engine's key forms (they need not be real sessions: counting
reads keys and sizes only): every session has a primary copy on the node its key names and a
backup copy on the other node, plus tombstones and foreign keys that must not be counted.
Counting runs in a fresh child process (``collect_status``, as ``msm_status`` calls it), whose
wall time and peak RSS (``VmHWM``: ``ru_maxrss`` would include the parent's memory at fork time)
are measured, first on a small fill and then on the full one: memory that stays flat between the
two is the point. The exit status is 1 only if a count is wrong; speed is
reported, not asserted.

    python -m bench.count_sessions                 # 1,000,000 sessions (about 25 s)
    python -m bench.count_sessions --sessions 200000

Measured on the 2-core development machine (memcached 1.6.18, Python 3.11): 1,000,000 sessions
(2,000,000 items) counted exactly in 3.5 s, peak RSS 43.6 MiB, against 41.5 MiB for 10,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import MemcachedProcess

ROOT = Path(__file__).resolve().parent.parent
VALUE = b"s" * 120  # about the size of a small signed session
TOMBSTONE = b"t" * 59
BATCH = 20_000


def write(port: int, items: list[tuple[bytes, bytes]]) -> None:
    """Pipelined ``set noreply``, then one ``version`` to know every set was handled."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for start in range(0, len(items), BATCH):
            sock.sendall(b"".join(
                b"set %s 0 0 %d noreply\r\n%s\r\n" % (key, len(value), value)
                for key, value in items[start : start + BATCH]
            ))
        sock.sendall(b"version\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(1024)
        assert reply.startswith(b"VERSION"), reply


def fill(servers: list[MemcachedProcess], start: int, stop: int) -> None:
    """Sessions ``start..stop``: even ones live on n1, odd ones on n2, backups on the other."""
    for index, server in enumerate(servers):
        own, other = f"n{index + 1}".encode(), f"n{2 - index}".encode()
        items = [(b"%032x-%s" % (i, own), VALUE) for i in range(start + index, stop, 2)]
        items += [(b"bak:%032x-%s" % (i, other), VALUE) for i in range(start + 1 - index, stop, 2)]
        items += [(b"%032x-%s" % (i, own), TOMBSTONE) for i in range(stop, stop + 500)]
        items += [(b":1:views.cache.%d" % i, VALUE) for i in range(start, start + 500)]
        write(server.port, items)


def peak_rss_kib() -> int:
    """Peak resident memory of this process image (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(spec: str) -> None:
    """Count once, as msm_status does, and print time and memory as JSON."""
    import django
    from django.conf import settings

    settings.configure(SECRET_KEY="bench", INSTALLED_APPS=["django_msm"],
                       DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 2.0})
    django.setup()
    from django_msm.ops.status import collect_status

    before = peak_rss_kib()
    started = time.perf_counter()
    status = collect_status(count=True, statistics=False)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib()
    print(json.dumps({
        "seconds": elapsed, "rss_before_kib": before, "rss_peak_kib": peak,
        "sessions": status.sessions, "backups": status.backup_copies,
        "per_node": [(n.counts.sessions, n.counts.backup_copies) if n.counts else None
                     for n in status.nodes],
    }))


def measure(spec: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "bench.count_sessions", "--child", spec],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    memory = max(256, args.sessions * 600 // 1_000_000)  # MiB per node, with room to spare
    servers = [MemcachedProcess(f"n{i + 1}", memory_mb=memory).start() for i in range(2)]
    spec = ",".join(server.spec for server in servers)
    failed = False
    try:
        print(f"{'sessions':>10}  {'items':>9}  {'fill s':>7}  {'count s':>8}  "
              f"{'RSS before':>10}  {'RSS peak':>9}  result")
        done = 0
        for target in (args.small, args.sessions):
            started = time.perf_counter()
            fill(servers, done, target)
            filled = time.perf_counter() - started
            done = target
            found = measure(spec)
            expected = [(target // 2, target // 2)] * 2
            ok = found["sessions"] == target and found["per_node"] == [list(e) for e in expected]
            failed |= not ok
            before, peak = found["rss_before_kib"] / 1024, found["rss_peak_kib"] / 1024
            print(f"{target:>10,}  {2 * target:>9,}  {filled:>7.1f}  {found['seconds']:>8.2f}  "
                  f"{before:>7.1f} MiB  {peak:>5.1f} MiB"
                  f"  {'exact' if ok else 'WRONG: ' + json.dumps(found)}")
    finally:
        for server in servers:
            server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
