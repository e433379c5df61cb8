"""Issue 8's memory check: in sticky mode, 100,000 distinct sessions do not grow an app process
beyond the configured local-cache bound (``LOCAL_CACHE_ENTRIES`` / ``LOCAL_CACHE_BYTES``).

This process plays the app process: it creates the sessions through ``SessionStore`` on two real
memcached nodes, as a worker serving 100,000 logins would, each with about 1 KB of data (so
unbounded local copies would take well over 100 MB). RSS (``/proc/self/statm``) is read before,
once the local cache is full, and at the end:

* the local cache holds no more than its bounds;
* RSS grows by no more than the byte bound, plus a per-entry allowance for the Python objects
  around each payload, plus allocator slack;
* from "full" to the end (90 % of the sessions), RSS stays flat within the slack.

The figures are printed (``pytest -s``) for the report.
"""

from __future__ import annotations

import gc
import os
import secrets
from collections.abc import Callable

import pytest
from django.test import override_settings

from django_msm.runtime import get_cluster
from django_msm.session import SessionStore
from tests.servers import MemcachedProcess

pytestmark = pytest.mark.integration

SESSIONS = 100_000
WARM_UP = 10_000  # enough to fill the local cache to its bound
ENTRIES = 20_000
MAX_BYTES = 4 * 1024 * 1024  # binds first: ~1 KB payloads, so ~4,000 entries fit
PER_ENTRY = 1024  # allowance for the key, entry, copy and token objects around a payload
SLACK = 16 * 1024 * 1024  # allocator and interpreter noise (pymalloc arenas, pools, caches)
MIB = 1024 * 1024


def rss() -> int:
    """Resident set size of this process in bytes, after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def create_sessions(count: int) -> None:
    for _ in range(count):
        store = SessionStore()
        store["user"] = secrets.token_hex(8)
        store["profile"] = secrets.token_hex(500)  # 1,000 characters, incompressible
        store.save()


def test_sticky_local_copies_stay_within_the_configured_bound(
    memcached_nodes: Callable[..., list[MemcachedProcess]],
) -> None:
    n1, n2 = memcached_nodes(2, memory_mb=512)  # room for every copy: no eviction noise
    settings = {
        "MEMCACHED_NODES": f"{n1.spec},{n2.spec}", "STICKY": True, "ROUTE": "app1",
        "LOCAL_CACHE_ENTRIES": ENTRIES, "LOCAL_CACHE_BYTES": MAX_BYTES,
        "ENABLE_STATISTICS": False,
    }
    with override_settings(DJANGO_MSM=settings):
        create_sessions(1)  # imports, connection pools, first allocations
        before = rss()
        create_sessions(WARM_UP)
        full = rss()
        create_sessions(SESSIONS - WARM_UP - 1)
        after = rss()
        local = get_cluster().local
        assert local is not None
        held, held_bytes = len(local), local.size_bytes
    allowance = MAX_BYTES + held * PER_ENTRY + SLACK
    print(f"\nsticky memory: {SESSIONS} sessions; local cache {held} entries, "
          f"{held_bytes / MIB:.1f} MiB (bounds {ENTRIES} entries, {MAX_BYTES / MIB:.0f} MiB); "
          f"RSS {before / MIB:.1f} MiB before, {full / MIB:.1f} MiB full, {after / MIB:.1f} MiB "
          f"after (+{(after - before) / MIB:.1f} MiB; allowed +{allowance / MIB:.1f} MiB)")
    assert held <= ENTRIES and held_bytes <= MAX_BYTES
    assert held_bytes > MAX_BYTES // 2  # the cache was in use, so the bound was exercised
    assert after - before <= allowance
    assert after - full <= SLACK
