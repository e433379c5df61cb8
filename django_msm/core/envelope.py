"""The stored form of a session copy: a small signed envelope.

    version:1 kind:1 flags:1 revision:8 written_at:8 expires_at:8 | payload | hmac-sha256:32

* ``kind`` tells a session copy from a tombstone (a deleted or relocated session), so that a node
  that comes back after a split cannot resurrect what was deleted meanwhile. A relocation's
  tombstone carries the new key as its payload: the forward, signed like everything else.
* ``revision`` grows with every write of a session; ``written_at`` (wall clock) tells copies
  written before a node rejoined from those written after.
* ``payload`` is ``SESSION_SERIALIZER`` output, zlib-compressed above ``COMPRESS_MIN_SIZE``.
* The HMAC is keyed from ``SECRET_KEY`` (and verified with ``SECRET_KEY_FALLBACKS``): a value
  that fails it is a logged miss. This gives ``signing.dumps``' guarantee at a fraction of its
  cost: no base64, one HMAC over raw bytes. ``Copy.signed_with`` tells which key verified it,
  so a copy signed with a fallback is re-signed when read (``core.rotation``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import struct
import threading
import zlib
from dataclasses import dataclass, field

from ..exceptions import CorruptCopy
from .keys import parse
from .stats import statistics

logger = logging.getLogger(__name__)

VERSION = 1
_HEADER = struct.Struct(">BBBQdd")
_MAC_SIZE = 32
_COMPRESSED = 0x01
_SAMPLE_ABOVE = 16 * 1024  # payloads up to this size are compressed without a sample
_SAMPLE = 4 * 1024
_RESAMPLE_EVERY = 16  # a session's saves that reuse its last decision before a fresh sample


class Kind(enum.IntEnum):
    SESSION = 1
    TOMBSTONE = 2


@dataclass(frozen=True)
class Copy:
    """One decoded stored copy. ``payload`` is the serializer's (uncompressed) output;
    ``signed_with`` the index of the signing key that verified it (0: the current one)."""

    kind: Kind
    revision: int
    written_at: float
    expires_at: float
    payload: bytes = b""
    signed_with: int = field(default=0, compare=False)
    # Whether the stored form is compressed: for a decoded copy, what it was; for a copy about
    # to be packed, its session's last decision (``compression_of``), None to sample afresh.
    compressed: bool | None = field(default=None, compare=False)

    @property
    def is_tombstone(self) -> bool:
        return self.kind is Kind.TOMBSTONE


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def compression_of(previous: Copy | None) -> bool | None:
    """What a session's next copy takes from ``previous`` (its loaded or last written copy)
    instead of a sample: the decision made for it, if it was large enough to be sampled."""
    if previous is None or len(previous.payload) <= _SAMPLE_ABOVE:
        return None
    return previous.compressed


def _worth_compressing(copy: Copy) -> bool:
    """Try a sample first. zlib spends ~15 ms on 512 KB of base64 for a 23 % saving, while
    ordinary JSON shrinks by 70-90 %; payloads whose sample does not shrink by 40 % are
    stored as they are. 4 KB from the middle predict the whole within a few points (base64
    0.76 against 0.77, a JSON cart 0.19 against 0.15, hex 0.57 against 0.59) at a quarter of the
    cost of 16 KB, paid by every save of a large session: so a session's saves reuse its last
    decision (``Copy.compressed``), sampling afresh every ``_RESAMPLE_EVERY`` revisions, in
    case its content changed in kind. A wrong guess costs bytes, never content."""
    payload = copy.payload
    if len(payload) <= _SAMPLE_ABOVE:
        return True
    if copy.compressed is not None and copy.revision % _RESAMPLE_EVERY:
        return copy.compressed
    middle = len(payload) // 2
    sample = payload[middle - _SAMPLE // 2 : middle + _SAMPLE // 2]
    return _sampler.compressed_size(sample) < 0.6 * len(sample)


class _Sampler(threading.local):
    """One long-lived zlib compressor per thread for ``_worth_compressing``'s sample.

    A fresh ``zlib.compress`` sets up ~270 KB of deflate state each time: in a tight loop the
    allocator hands the same memory back (30 µs for 4 KB of base64), but between requests, on
    a VM where a page fault costs microseconds, profiles showed the sample at 45-110 µs. This
    compressor is set up once per thread. A full flush ends each sample and resets the compressor's
    history, so every sample is measured on its own, as a fresh compressor would. Per thread
    (``threading.local``), not global: one sample's input and flush must not interleave with
    another thread's, and a lock would make concurrent saves of large sessions queue.
    """

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(1)

    def compressed_size(self, sample: bytes) -> int:
        try:
            compressor = self._compressor
            return len(compressor.compress(sample)) + len(compressor.flush(zlib.Z_FULL_FLUSH))
        except BaseException:  # a half-fed compressor would skew the next sample: start anew
            self._compressor = zlib.compressobj(1)
            raise


_sampler = _Sampler()


def pack(copy: Copy, key: bytes, compress_min_size: int) -> bytes:
    """Return the signed stored form of ``copy``."""
    payload, flags = copy.payload, 0
    if len(payload) >= compress_min_size and _worth_compressing(copy):
        packed = zlib.compress(payload, 1)
        if len(packed) < len(payload):
            payload, flags = packed, _COMPRESSED
    header = _HEADER.pack(
        VERSION, copy.kind, flags, copy.revision, copy.written_at, copy.expires_at
    )
    body = header + payload
    return body + _mac(key, body)


def unpack(data: bytes, keys: tuple[bytes, ...]) -> Copy:
    """Verify and decode stored bytes; raise CorruptCopy for anything not signed by us."""
    if len(data) < _HEADER.size + _MAC_SIZE:
        raise CorruptCopy("stored value too short")
    body, mac = data[:-_MAC_SIZE], data[-_MAC_SIZE:]
    signed_with = next(
        (index for index, key in enumerate(keys) if hmac.compare_digest(mac, _mac(key, body))),
        None,
    )
    if signed_with is None:
        raise CorruptCopy("stored value failed its signature")
    version, kind, flags, revision, written_at, expires_at = _HEADER.unpack_from(body)
    if version != VERSION or kind not in (Kind.SESSION, Kind.TOMBSTONE):
        raise CorruptCopy(f"unknown stored format {version}/{kind}")
    payload = body[_HEADER.size :]
    if flags & _COMPRESSED:
        try:
            payload = zlib.decompress(payload)
        except zlib.error as exc:
            raise CorruptCopy("stored value failed to decompress") from exc
    return Copy(Kind(kind), revision, written_at, expires_at, payload, signed_with,
                bool(flags & _COMPRESSED))


def forward_of(copy: Copy) -> str | None:
    """The new key a relocation's tombstone names, if it is a well-formed key.

    A tombstone that names none is a deletion. One whose payload is not a key can only come
    from a signing key's holder; it is logged and read as a deletion: a miss, never a switch.
    """
    if not copy.is_tombstone or not copy.payload:
        return None
    key = copy.payload.decode("ascii", errors="replace")
    if parse(key) is None:
        statistics.incr("corrupt_copies")
        logger.warning("a relocation's tombstone names no session key; read as a deletion")
        return None
    return key
