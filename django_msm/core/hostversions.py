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

The file is per account (its name ends in ``-u<uid>``, mode 0600, and it is only used if this
account owns it): a root shell or cron job that runs first gets a table of its own instead of
locking the web workers out (issue 12: a ``PermissionError`` on every request). Every process
holds a shared ``flock`` on the table while it uses it; the last one to close it removes it, and
tables left by processes that died without closing are removed by the next process that starts
(``remove_stale``). A process of another account writing sessions of the route is seen by the
workers' table only through the node, once ``HOST_VERSION_TRUST`` has passed.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import mmap
import os
import re
import struct
import tempfile
import time

from ..clock import Clock

# seq, pad, fingerprint, trusted until (CLOCK_MONOTONIC, shared by the host's processes), token
_SLOT = struct.Struct("<IIQdB40s")
_STRIDE = 80
_SEQ = struct.Struct("<I")
_PREFIX = "django_msm-"
_OPEN_ATTEMPTS = 50  # a table being removed by its last user or a cleaner: open the next one


def _fingerprint(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class HostVersions:
    """A fixed-size shared table; open the same ``path`` in every worker of the route."""

    def __init__(self, path: str, slots: int, trust: float, clock: Clock):
        """Join (or create) the table at ``path``; OSError if this process cannot use it."""
        self.path = path
        self.slots = slots
        self.trust = trust
        self.clock = clock
        self._pid = os.getpid()
        self._fd = _join(path)
        try:
            size = slots * _STRIDE
            if os.fstat(self._fd).st_size < size:
                os.posix_fallocate(self._fd, 0, size)  # ENOSPC now, not SIGBUS on a write
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise
        atexit.register(self.close)

    @staticmethod
    def folder() -> str:
        return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()

    @staticmethod
    def path_for(identity: str, folder: str | None = None) -> str:
        """One file per application, node list, route (``identity`` names them) and account."""
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        name = f"{_PREFIX}{digest}-u{os.geteuid()}"
        return os.path.join(folder or HostVersions.folder(), name)

    @staticmethod
    def remove_stale(folder: str | None = None) -> int:
        """Remove this account's tables that no process holds; return how many."""
        folder = folder or HostVersions.folder()
        own = re.compile(rf"{_PREFIX}[0-9a-f]{{24}}-u{os.geteuid()}\Z")
        removed = 0
        for name in os.listdir(folder):
            if own.match(name):
                removed += _remove_if_unused(os.path.join(folder, name))
        return removed

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
        """Unmap the table; the last process to close it removes the file (idempotent)."""
        if self._fd < 0:
            return
        atexit.unregister(self.close)
        self._map.close()
        if os.getpid() == self._pid:  # a forked child shares our lock: never remove it for us
            with contextlib.suppress(OSError):
                _unlink_if_last(self.path, self._fd)
        os.close(self._fd)
        self._fd = -1


def _same_file(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _join(path: str) -> int:
    """Open the table with a shared lock (one per user), creating it if needed.

    A file that is not this account's own (another owner, other permission bits) is refused: it
    could be written by someone else. A file removed by its last user or a cleaner between the
    open and the lock is left for the next one.
    """
    for _ in range(_OPEN_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_mode & 0o077:
                raise PermissionError(
                    f"{path} belongs to uid {info.st_uid} with mode {info.st_mode & 0o777:o}"
                )
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            if _same_file(path, fd):
                return fd
        except BlockingIOError:
            time.sleep(0.002)  # being removed right now
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(f"{path}: the table kept being removed while it was opened")


def _unlink_if_last(path: str, fd: int) -> bool:
    """Remove the table if no other process holds it (exclusive lock granted)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # still in use
    if not _same_file(path, fd):
        return False
    os.unlink(path)
    return True


def _remove_if_unused(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return 0
        return int(_unlink_if_last(path, fd))
    except OSError:
        return 0
    finally:
        os.close(fd)
