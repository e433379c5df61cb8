"""Redis inspection: ``PING`` and ``INFO`` for the probe, ``SCAN`` and ``STRLEN`` to count.

Both use the node's own client (``RedisStore.client``), so a ``cache:ALIAS`` node is inspected
through django-redis' client with its options. Counting walks the keyspace with ``SCAN`` in
batches (string keys only) and asks the value sizes of the matching keys in one pipelined
``STRLEN`` per batch, so memory stays flat. ``SCAN`` may return a key twice if Redis resizes its
table during the walk; the count is exact otherwise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from redis.exceptions import RedisError

from ...core.keys import BACKUP_PREFIX, SESSION_KEY_PATTERN
from ...stores import Store
from . import (
    TOMBSTONE_SIZE,
    CountError,
    Counts,
    Inspector,
    KeyBatch,
    Probe,
    timed_pings,
)

SCAN_BATCH = 1000


def probe(store: Store, timeout: float) -> Probe:
    """Ping a few times and read ``INFO`` through the node's client."""
    client: Any = store.client  # type: ignore[attr-defined]
    try:
        latency = timed_pings(client.ping)
        info = client.info()
        items = client.dbsize()
    except (RedisError, OSError) as exc:
        return Probe(up=False, error=str(exc) or type(exc).__name__)
    return Probe(
        up=True,
        latency_ms=latency,
        version=info.get("redis_version"),
        uptime_s=info.get("uptime_in_seconds"),
        memory_used=info.get("used_memory"),
        memory_limit=info.get("maxmemory") or None,  # 0: no limit
        items=items,
        evictions=info.get("evicted_keys"),
    )


def key_pattern(prefix: str) -> re.Pattern[bytes]:
    """Match a primary or backup key; groups: backup marker, node id, route."""
    return re.compile(
        rb"\A(" + re.escape(BACKUP_PREFIX.encode()) + rb")?" + re.escape(prefix.encode())
        + SESSION_KEY_PATTERN.encode() + rb"\Z"
    )


def count(store: Store, prefix: str, timeout: float) -> Counts:
    """Count the session copies on one Redis node, batch by batch."""
    client: Any = store.client  # type: ignore[attr-defined]
    pattern = key_pattern(prefix)
    primaries: Counter[str | None] = Counter()
    backups: Counter[str | None] = Counter()
    cursor = 0
    try:
        while True:
            cursor, keys = client.scan(cursor, count=SCAN_BATCH, _type="string")
            raw = (k if isinstance(k, bytes) else k.encode() for k in keys)
            matches = [m for m in map(pattern.match, raw) if m is not None]
            pipe = client.pipeline(transaction=False)
            for match in matches:
                pipe.strlen(match.string)
            for match, size in zip(matches, pipe.execute(), strict=True):
                if size > TOMBSTONE_SIZE:
                    node_id = match.group(2).decode() if match.group(2) else None
                    (backups if match.group(1) else primaries)[node_id] += 1
            if cursor == 0:
                return Counts(dict(primaries), dict(backups))
    except (RedisError, OSError) as exc:
        raise CountError(str(exc) or type(exc).__name__) from exc


def keys(store: Store, prefix: str, timeout: float, cursor: str | None) -> Iterator[KeyBatch]:
    """The node's session keys, one ``SCAN`` batch at a time; each batch carries the cursor
    that resumes the walk after it (a ``SCAN`` cursor stays valid for any client)."""
    client: Any = store.client  # type: ignore[attr-defined]
    pattern = key_pattern(prefix)
    position = int(cursor or 0)
    try:
        while True:
            position, found = client.scan(position, count=SCAN_BATCH, _type="string")
            raw = (k if isinstance(k, bytes) else k.encode() for k in found)
            batch = [m.string.decode() for m in map(pattern.match, raw) if m is not None]
            yield KeyBatch(batch, None if position == 0 else str(position))
            if position == 0:
                return
    except (RedisError, OSError) as exc:
        raise CountError(str(exc) or type(exc).__name__) from exc


INSPECTOR = Inspector(probe, count, keys)
