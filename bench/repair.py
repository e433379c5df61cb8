"""``python -m bench.repair``: repair throughput and peak memory, 100,000 and 1,000,000 sessions.

Two memcached nodes on free loopback ports. Every session is written as the engine writes it
(a signed envelope: repair verifies every copy it reads) with pipelined ``set noreply`` on a
plain socket, its primary copy on the node its key names and its backup copy on the other one;
then node n2 is restarted empty, so every session has lost one copy (n2's sessions their
primary, n1's their backup), and one repair pass (``ops.repair.RepairPass``, as AUTO_REPAIR and
``msm_repair`` run it) restores them all, in a fresh child process whose wall time and peak RSS
(``VmHWM``) are measured: at the default ``REPAIR_RATE`` and with no rate limit. Memory that
stays flat from 100,000 to 1,000,000 sessions is the point. The exit status is 1 if a pass did
not restore exactly one copy of every session.

    python -m bench.repair                          # 100,000 and 1,000,000 (about 5 minutes)
    python -m bench.repair --sizes 20000 --rates 0

Measured on the 2-core development machine, shared with other work (memcached 1.6.18, Python
3.11): 100,000 sessions restored in 11.2 s at the default rate (10,000/s), 9.1 s unbounded
(11,021/s); 1,000,000 in 100.2 s at the default rate, 69.9 s unbounded (14,310/s); peak RSS
42.0 MiB throughout (40.5 MiB before the pass).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.count_sessions import peak_rss_kib, write
from django_msm.core.envelope import Copy, Kind, pack
from tests.servers import MemcachedProcess

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-repair"
SALT = b"django_msm.envelope"  # django_msm.conf.SIGNING_SALT (no Django in the parent)
PAYLOAD = b'{"_auth_user_id":"4711","cart":["apple","pear"],"visits":12}'
DEFAULT_RATE = 10_000  # django_msm.conf.CONFIG_DEFAULTS["REPAIR_RATE"]


def envelope() -> bytes:
    """One signed session copy, as the child process (same SECRET_KEY) verifies it."""
    key = hashlib.sha256(SALT + SECRET.encode()).digest()
    now = time.time()
    return pack(Copy(Kind.SESSION, 1, now, now + 86_400, PAYLOAD), key, 4096)


def fill_n1(server: MemcachedProcess, start: int, stop: int, value: bytes) -> None:
    """n1's copies of sessions ``start..stop``: the primaries of the even ones (named n1) and
    the backups of the odd ones (named n2). n2 is restarted empty before each pass, so these
    are the only copies: every session has lost one."""
    items = [(b"%032x-n1" % i, value) for i in range(start, stop, 2)]
    items += [(b"bak:%032x-n2" % i, value) for i in range(start + 1, stop, 2)]
    write(server.port, items)


def child(spec: str, rate: int) -> None:
    """One repair pass, as AUTO_REPAIR runs it; print figures and memory as JSON."""
    import django
    from django.conf import settings

    settings.configure(SECRET_KEY=SECRET, INSTALLED_APPS=["django_msm"],
                       DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 2.0,
                                   "AUTO_REPAIR": False})
    django.setup()
    from django_msm.ops.repair import RepairPass
    from django_msm.runtime import get_cluster

    cluster = get_cluster()
    before = peak_rss_kib()
    report = RepairPass(cluster, rate=rate).run()
    print(json.dumps({"seconds": report.seconds, "rss_before_kib": before,
                      "rss_peak_kib": peak_rss_kib(), "sessions": report.sessions,
                      "restored": report.restored, "unreachable": report.unreachable}))


def measure(spec: str, rate: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.repair", "--child", spec, "--rates", str(rate)],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rates", type=int, nargs="+", default=[DEFAULT_RATE, 0],
                        help="REPAIR_RATE values to run (0: no limit)")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rates[0])
        return 0
    memory = max(256, max(args.sizes) * 700 // 1_000_000)  # MiB per node, with room to spare
    servers = [MemcachedProcess(f"n{i + 1}", memory_mb=memory).start() for i in range(2)]
    spec, value, failed, done = ",".join(s.spec for s in servers), envelope(), False, 0
    try:
        print(f"{'sessions':>10}  {'rate':>7}  {'repair s':>8}  {'sessions/s':>10}  "
              f"{'RSS before':>10}  {'RSS peak':>9}  result")
        for size in sorted(args.sizes):
            fill_n1(servers[0], done, size, value)  # n1 keeps what earlier sizes put there
            done = size
            for rate in args.rates:
                servers[1].restart_empty()
                found = measure(spec, rate)
                ok = found["restored"] == size and found["sessions"] == size
                failed |= not ok
                print(f"{size:>10,}  {rate or 'none':>7}  {found['seconds']:>8.2f}  "
                      f"{size / found['seconds']:>10,.0f}  "
                      f"{found['rss_before_kib'] / 1024:>6.1f} MiB  "
                      f"{found['rss_peak_kib'] / 1024:>5.1f} MiB  "
                      f"{'exact' if ok else 'WRONG: ' + json.dumps(found)}", flush=True)
    finally:
        for server in servers:
            server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
