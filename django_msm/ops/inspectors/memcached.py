"""memcached inspection: ``stats`` for the probe, a streamed ``lru_crawler metadump`` to count.

Counting reads ``lru_crawler metadump hash`` (``all`` on servers without it) from a plain socket
in chunks and parses each chunk with one compiled pattern: memory stays flat however many items
the node holds (pymemcache buffers whole responses, and ``stats cachedump`` is capped, so neither
is used). metadump reports an item's total size, not its value's, so a value's size is recovered
by subtracting the key and the server's fixed per-item overhead (``item_overhead``).
"""

from __future__ import annotations

import functools
import re
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, unquote

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

_CHUNK = 1 << 18
KEY_BATCH = 500
T = TypeVar("T")
_BUSY_RETRIES = 20


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class _Connection:
    """A plain socket to one memcached node; every receive is bounded by ``timeout``."""

    def __init__(self, address: str, timeout: float):
        self.sock = socket.create_connection(_host_port(address), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def chunks(self) -> Iterator[bytes]:
        while True:
            chunk = self.sock.recv(_CHUNK)
            if not chunk:
                raise CountError("connection closed by the node")
            yield chunk

    def request(self, command: bytes, last: tuple[bytes, ...] = (b"END",)) -> list[bytes]:
        """Send a short command; return its reply lines up to one starting with ``last``."""
        self.sock.sendall(command + b"\r\n")
        lines: list[bytes] = []
        chunks = self.chunks()
        while True:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                self.buffer += next(chunks)
                continue
            line, self.buffer = self.buffer[:newline].rstrip(b"\r"), self.buffer[newline + 1 :]
            if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                raise CountError(f"{command.decode()!r} refused: {line.decode(errors='replace')}")
            lines.append(line)
            if line.startswith(last):
                return lines

    def stats(self, command: bytes = b"stats") -> dict[str, str]:
        pairs = (line.decode().split(" ", 2) for line in self.request(command)[:-1])
        return {parts[1]: parts[2] for parts in pairs if len(parts) == 3}


def probe(store: Store, timeout: float) -> Probe:
    """Ping a few times and read ``stats`` on a fresh connection of our own."""
    try:
        with _Connection(store.node.address, timeout) as conn:
            latency = timed_pings(lambda: conn.request(b"version", (b"VERSION",)))
            stats = conn.stats()
    except (OSError, CountError, ValueError) as exc:
        return Probe(up=False, error=str(exc) or type(exc).__name__)
    return Probe(
        up=True,
        latency_ms=latency,
        version=stats.get("version"),
        uptime_s=_int(stats.get("uptime")),
        memory_used=_int(stats.get("bytes")),
        memory_limit=_int(stats.get("limit_maxbytes")),
        items=_int(stats.get("curr_items")),
        evictions=_int(stats.get("evictions")),
    )


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def item_overhead(stats: dict[str, str], settings: dict[str, str]) -> int:
    """Bytes memcached adds to key and value in metadump's ``size`` (flags 0, unchunked).

    The item header (48 bytes on 64-bit builds), the key's NUL, the value's CRLF, and the
    CAS value unless the server runs with ``-C``.
    """
    header = 48 if stats.get("pointer_size", "64") == "64" else 32
    cas = 8 if settings.get("cas_enabled", "yes") == "yes" else 0
    return header + 1 + 2 + cas


def metadump_pattern(prefix: str) -> re.Pattern[bytes]:
    """Match one metadump line of a primary or backup copy; keys arrive percent-encoded."""
    encoded = re.escape(quote(prefix, safe="").encode())
    backup = re.escape(quote(BACKUP_PREFIX, safe="").encode())
    return re.compile(
        rb"^key=(" + backup + rb")?" + encoded
        + SESSION_KEY_PATTERN.encode() + rb" [^\n]* size=(\d+)",
        re.MULTILINE,
    )


def scan_metadump(chunks: Iterator[bytes], pattern: re.Pattern[bytes]) -> Counter[tuple]:
    """Tally matching lines by (backup, node id, route, size) until metadump's ``END``.

    Only whole lines are parsed; the partial line at the end of a chunk waits for the next one.
    The tally has one entry per distinct size, not per item, so memory stays flat.
    """
    tally: Counter[tuple] = Counter()
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk
        if tail == b"" and buffer.startswith((b"BUSY", b"ERROR", b"CLIENT_ERROR")):
            raise CountError(buffer.split(b"\r\n", 1)[0].decode(errors="replace"))
        cut = buffer.rfind(b"\n") + 1
        tally.update(pattern.findall(buffer, 0, cut))
        tail = buffer[cut:]
        if not tail and (buffer == b"END\r\n" or buffer.endswith(b"\nEND\r\n")):
            return tally
    raise CountError("metadump ended early")


def classify(tally: Counter[tuple], prefix: str, overhead: int) -> Counts:
    """Turn a metadump tally into session copies per named node, leaving tombstones out."""
    primaries: Counter[str | None] = Counter()
    backups: Counter[str | None] = Counter()
    for (backup, node_id, route, size), number in tally.items():
        key_length = len(prefix) + (len(BACKUP_PREFIX) if backup else 0) + 32
        key_length += (1 + len(node_id) if node_id else 0) + (1 + len(route) if route else 0)
        if int(size) - key_length - overhead <= TOMBSTONE_SIZE:
            continue
        name = node_id.decode() if node_id else None
        (backups if backup else primaries)[name] += number
    return Counts(dict(primaries), dict(backups))


def _metadump(
    conn: _Connection,
    pattern: re.Pattern[bytes],
    scan: Callable[[Iterator[bytes], re.Pattern[bytes]], T] = scan_metadump,  # type: ignore[assignment]
) -> T:
    """Run metadump, waiting out another crawl; walk the hash table where the server can.

    ``metadump hash`` sees every item exactly once; the LRU walk of ``metadump all`` (older
    servers) can miss items that the LRU maintainer moves between segments during the walk.
    """
    modes = [b"hash", b"all"]
    for _ in range(_BUSY_RETRIES):
        conn.sock.sendall(b"lru_crawler metadump " + modes[0] + b"\r\n")
        try:
            return scan(conn.chunks(), pattern)
        except CountError as exc:
            if str(exc).startswith(("ERROR", "CLIENT_ERROR")) and len(modes) > 1:
                modes.pop(0)
            elif not str(exc).startswith("BUSY"):
                raise
            else:
                time.sleep(0.05)  # another crawl is running on this node
    raise CountError("lru crawler stayed busy")


def count(store: Store, prefix: str, timeout: float) -> Counts:
    """Count the session copies on one memcached node with a streamed metadump."""
    pattern = metadump_pattern(prefix)
    try:
        with _Connection(store.node.address, timeout) as conn:
            overhead = item_overhead(conn.stats(), conn.stats(b"stats settings"))
            tally: Counter[tuple[Any, ...]] = _metadump(conn, pattern)
    except OSError as exc:
        raise CountError(str(exc) or type(exc).__name__) from exc
    return classify(tally, prefix, overhead)


def key_pattern(prefix: str) -> re.Pattern[bytes]:
    """Match one metadump line of a primary or backup copy; group 1 is the encoded key."""
    encoded = re.escape(quote(prefix, safe="").encode())
    backup = re.escape(quote(BACKUP_PREFIX, safe="").encode())
    return re.compile(
        rb"^key=((?:" + backup + rb")?" + encoded + SESSION_KEY_PATTERN.encode() + rb") ",
        re.MULTILINE,
    )


def spool_metadump(chunks: Iterator[bytes], pattern: re.Pattern[bytes], out: BinaryIO) -> int:
    """Write every matching key to ``out``, one per line, until metadump's ``END``; the
    node's whole dump passes through here, so nothing of it is kept in memory."""
    written, tail = 0, b""
    for chunk in chunks:
        buffer = tail + chunk
        if tail == b"" and buffer.startswith((b"BUSY", b"ERROR", b"CLIENT_ERROR")):
            raise CountError(buffer.split(b"\r\n", 1)[0].decode(errors="replace"))
        cut = buffer.rfind(b"\n") + 1
        for match in pattern.finditer(buffer, 0, cut):
            out.write(match.group(1) + b"\n")
            written += 1
        tail = buffer[cut:]
        if not tail and (buffer == b"END\r\n" or buffer.endswith(b"\nEND\r\n")):
            return written
    raise CountError("metadump ended early")


def keys(store: Store, prefix: str, timeout: float, cursor: str | None) -> Iterator[KeyBatch]:
    """The node's session keys in batches: metadump is spooled to a temporary file first (a
    slow reader must not hold the server's crawler), then read back. It cannot resume."""
    with tempfile.TemporaryFile() as spool:
        try:
            with _Connection(store.node.address, timeout) as conn:
                _metadump(conn, key_pattern(prefix), functools.partial(spool_metadump, out=spool))
        except OSError as exc:
            raise CountError(str(exc) or type(exc).__name__) from exc
        spool.seek(0)
        batch: list[str] = []
        for line in spool:
            batch.append(unquote(line[:-1].decode("ascii")))
            if len(batch) >= KEY_BATCH:
                yield KeyBatch(batch)
                batch = []
        if batch:
            yield KeyBatch(batch)


INSPECTOR = Inspector(probe, count, keys)
