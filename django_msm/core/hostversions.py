"""HostVersions: the version of each session as last written or confirmed on this host.

Sticky mode with a ``ROUTE`` keeps a local copy of each session in every worker process of the
host. A worker may trust its copy only if it is the current version; asking the node costs a
round trip per request. But with a route, the only processes that write a session key are the
workers of that route, on this host: takeovers and relocations always create a new key. So the
workers share what they know through a small table in a memory-mapped file (``/dev/shm``):
session key → version token, written by every worker that writes or confirms a session.

* Readers never lock: each slot has a sequence number (a seqlock); a reader that sees it odd or
  changed treats the slot as empty and asks the node, which is always safe.
* Writers take an ``fcntl`` lock on the slot, so two workers never interleave a slot write.
* A slot is trusted for ``HOST_VERSION_TRUST`` seconds after it was written or confirmed. That
  bounds the one thing the table cannot see: another route *retiring* the key (a takeover, or a
  logout on another host during a takeover), after which a replayed old cookie could otherwise be
  served from a local copy on this host.
* Slots are direct-mapped by a 64-bit fingerprint of the key; a collision or an eviction makes a
  reader ask the node. The table never makes a read less fresh than the node would.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile

from ..clock import Clock

# seq, pad, fingerprint, trusted until (CLOCK_MONOTONIC, shared by the host's processes), token
_SLOT = struct.Struct("<IIQdB40s")
_STRIDE = 80
_SEQ = struct.Struct("<I")


def _fingerprint(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class HostVersions:
    """A fixed-size shared table; open the same ``path`` in every worker of the route."""

    def __init__(self, path: str, slots: int, trust: float, clock: Clock):
        self.slots = slots
        self.trust = trust
        self.clock = clock
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = slots * _STRIDE
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    @staticmethod
    def path_for(identity: str) -> str:
        """One file per application, node list and route (``identity`` names them)."""
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return os.path.join(folder, f"django_msm-{digest}")

    def _offset(self, fingerprint: int) -> int:
        return (fingerprint % self.slots) * _STRIDE

    def get(self, key: str) -> bytes | None:
        """The trusted version token of ``key``, or None (ask the node)."""
        fingerprint = _fingerprint(key)
        offset = self._offset(fingerprint)
        seq, _, stored, until, length, token = _SLOT.unpack_from(self._map, offset)
        if seq % 2 or _SEQ.unpack_from(self._map, offset)[0] != seq:
            return None  # a write is under way
        if stored != fingerprint or until < self.clock.monotonic() or not length:
            return None
        return token[:length]

    def put(self, key: str, token: bytes | None) -> None:
        """Record the current version of ``key`` (None or an over-long token forgets it)."""
        if token is None or len(token) > 40:
            token = b""
        fingerprint = _fingerprint(key)
        offset = self._offset(fingerprint)
        until = self.clock.monotonic() + self.trust if token else 0.0
        fcntl.lockf(self._fd, fcntl.LOCK_EX, _STRIDE, offset)
        try:
            seq = _SEQ.unpack_from(self._map, offset)[0]
            _SEQ.pack_into(self._map, offset, seq + 1)  # odd: readers keep away
            _SLOT.pack_into(self._map, offset, seq + 1, 0, fingerprint, until, len(token), token)
            _SEQ.pack_into(self._map, offset, seq + 2)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _STRIDE, offset)

    def forget(self, key: str) -> None:
        self.put(key, None)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
