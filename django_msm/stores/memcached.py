"""memcached nodes through pymemcache: one thread-safe connection pool per node.

Writes always wait for the server's answer (``default_noreply=False``, as Django's own
``PyMemcacheCache`` does): a session write that cannot fail is a session write nobody checked.

The pool is ours (``stores.pool.Connections``) of plain pymemcache ``Client``s, not pymemcache's
``PooledClient``: that one takes a lock and a generator-based context manager twice per
command, about 3 µs of a 15 µs round trip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownError,
)

from ..clock import Clock, SystemClock
from ..core.nodes import Node
from ..exceptions import ItemTooLarge, MSMError, NodeUnavailable
from . import meta
from .base import Store
from .pool import Connections, Replies

logger = logging.getLogger(__name__)

# memcached reads an exptime above 30 days as an absolute unix time (msm #228; Django agrees).
RELATIVE_TTL_LIMIT = 60 * 60 * 24 * 30
_TOO_LARGE = (b"object too large", b"out of memory storing object")
# An item is its key, its value and this much more (header, CAS, "\r\n": 59 bytes on memcached
# 1.6, a few to spare); memcached's item size limit (-I) is never below 1 KiB.
ITEM_OVERHEAD = 64
MIN_ITEM_LIMIT = 1024


def exptime(ttl: int, now: float) -> int:
    """Translate a relative ttl into memcached's exptime."""
    if ttl <= 0:
        return -1
    if ttl > RELATIVE_TTL_LIMIT:
        return int(now) + ttl
    return ttl


def _cas(reply: bytes) -> bytes | None:
    """Parse a meta reply: ``HD c<cas>`` → the CAS; ``NS``/``EN`` (not stored, miss) → None."""
    if not reply.startswith(b"HD"):
        return None
    for flag in reply.split()[1:]:
        if flag.startswith(b"c"):
            return flag[1:]
    raise MemcacheUnknownError(f"meta reply without CAS: {reply!r}")


_ADD_FLAGS = {"add": b"ME", "add_versioned": b"ME"}  # the meta set mode of the split adds
Parse = Callable[[bytes, "bytes | None"], Any]  # a reply line and its value -> the answer


def _stored(reply: bytes) -> bool:
    """Parse a meta set reply without a CAS: ``HD`` stored, ``NS`` not stored."""
    return reply.startswith(b"HD")


def _deadline(text: bytes) -> float:
    """A lock's wall-clock deadline (the last field of its item and of its proof); 0
    (expired) for anything unreadable."""
    try:
        return float(text.rpartition(b" ")[2])
    except ValueError:
        return 0.0


def _meta(client: Client, command: bytes) -> bytes | None:
    """A meta command whose reply carries a CAS (``ms``, ``mg ... c``): the CAS or None. Sent
    as it is (pymemcache's ``raw_command`` would copy a large value twice more on the way)."""
    return _cas(meta.request(client, command)[0])


def _meta_many(client: Client, commands: list[bytes]) -> list[bytes | None]:
    """Every ``ms`` written at once, one reply line read per command (pymemcache's
    ``_misc_cmd`` does exactly that; it has no public pipelined meta command)."""
    return [_cas(reply) for reply in client._misc_cmd(commands, b"ms", False)]


def _deleted(client: Client, command: bytes) -> bool:
    """An ``md``: True if the server deleted the item."""
    return client.raw_command(command).startswith(b"HD")


class MemcachedStore(Store):
    """A memcached node: pooled pymemcache clients with bounded connect and operation timeouts."""

    tokens_follow_bytes = False  # CAS values: a per-server counter, new on every write

    def __init__(
        self,
        node: Node,
        timeout: float,
        clock: Clock | None = None,
        backup_timeout: float | None = None,
    ):
        super().__init__(node)
        self.clock = clock or SystemClock()
        self.client = self._pool(timeout)
        # Backup copies and tombstones wait at most SESSION_BACKUP_TIMEOUT (msm's
        # sessionBackupTimeout): a slow second copy must not hold the response.
        self.backup_client = self._pool(backup_timeout) if backup_timeout else self.client
        self._item_limit: float | None = None  # the node's -I, asked once (see _check_size)

    def _pool(self, timeout: float) -> Connections[Client]:
        host, _, port = self.node.address.rpartition(":")
        server = (host.strip("[]"), int(port))
        return Connections(
            lambda: Client(
                server,
                connect_timeout=timeout,
                timeout=timeout,
                no_delay=True,
                default_noreply=False,
                allow_unicode_keys=False,
            ),
            Client.close,
            self._failed,
        )

    def _failed(self, exc: BaseException) -> None:
        """Turn pymemcache and socket errors into the core's exceptions (others pass)."""
        if isinstance(exc, MemcacheUnexpectedCloseError):  # a server error, but a dead socket
            self.drop_connections()
            raise NodeUnavailable(self.node.label, exc) from exc
        if isinstance(exc, MemcacheServerError):
            if any(marker in str(exc).encode() for marker in _TOO_LARGE):
                raise ItemTooLarge(f"node {self.node.label!r}: {exc}") from exc
            raise NodeUnavailable(self.node.label, exc) from exc
        if isinstance(exc, ConnectionRefusedError):
            raise NodeUnavailable(self.node.label, exc, refused=True) from exc
        if isinstance(exc, (OSError, MemcacheError)):
            # One broken connection means the others pooled with it are likely broken too (a
            # restarted node closed them all): drop them, or each would fail once in turn and
            # quarantine a healthy node again and again.
            self.drop_connections()
            raise NodeUnavailable(self.node.label, exc) from exc

    def _exp(self, ttl: int) -> int:
        return exptime(ttl, self.clock.time())

    def get(self, key: str) -> bytes | None:
        return self.client.run(meta.get, key)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self.client.run(Client.add, key, value, self._exp(ttl), False))

    def replace(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self.client.run(Client.replace, key, value, self._exp(ttl), False))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._check_size(self.backup_client, key, value)
        self.backup_client.run(Client.set, key, value, self._exp(ttl), False)

    def _check_size(self, pool: Connections[Client], key: str, value: bytes) -> None:
        """Raise ItemTooLarge before sending a value the node would refuse.

        memcached answers an over-size ``set`` or meta set by *unlinking* the item it held
        ("avoid stale data"), so a save over the item size limit would delete the session it
        failed to update. The limit is read once from ``stats settings``; small values (the
        common case, and every lock) never need it.
        """
        size = len(key) + len(value) + ITEM_OVERHEAD
        if size <= MIN_ITEM_LIMIT:
            return
        if self._item_limit is None:
            limit = pool.run(Client.stats, "settings").get(b"item_size_max")
            self._item_limit = float(limit) if isinstance(limit, int) else math.inf
        if size > self._item_limit:
            raise ItemTooLarge(
                f"node {self.node.label!r}: a value of {len(value)} bytes is over its item "
                f"size limit of {self._item_limit:.0f} bytes"
            )

    def touch(self, key: str, ttl: int) -> bool:
        return bool(self.client.run(Client.touch, key, self._exp(ttl), False))

    def delete(self, key: str) -> bool:
        return bool(self.client.run(Client.delete, key, False))

    # Version tokens are memcached's CAS values, read and returned by the meta commands of
    # memcached >= 1.6. Reads go through ``stores.meta``; writes with a CAS through
    # pymemcache's raw_command (single-line replies, which it reads safely).
    def get_versioned(self, key: str) -> tuple[bytes | None, bytes | None]:
        return self.client.run(meta.get_versioned, key)

    def version(self, key: str) -> bytes | None:
        return self.client.run(meta.version, key)

    def add_versioned(self, key: str, value: bytes, ttl: int) -> bytes | None:
        return self._meta_set(key, value, ttl, b"ME")

    def replace_versioned(self, key: str, value: bytes, ttl: int) -> bytes | None:
        return self._meta_set(key, value, ttl, b"MR")

    def cas(self, key: str, value: bytes, ttl: int, token: bytes) -> bytes | None:
        """``ms ... C<cas>``: memcached answers EX (changed) or NF (gone) unless it matches."""
        if not token.isdigit():
            return None  # not a CAS value: it cannot match (and would break the command)
        return self._meta_set(key, value, ttl, b"C" + token)

    def _meta_set(self, key: str, value: bytes, ttl: int, flag: bytes) -> bytes | None:
        """``ms`` with a mode (ME add, MR replace) or a CAS compare (C<cas>); the new CAS."""
        return self.client.run(_meta, self._ms(key, value, ttl, flag))

    def _ms(self, key: str, value: bytes, ttl: int, flag: bytes) -> bytes:
        """An ``ms`` command asking for the new CAS, built with one copy of the value."""
        self._check_size(self.client, key, value)
        head = b"ms %s %d T%d %s c\r\n" % (key.encode(), len(value), self._exp(ttl), flag)
        return b"".join((head, value, b"\r\n"))

    def start(self, method: str, *args: Any) -> Callable[[], Any]:
        """The commands a create and the per-user index send to two nodes at once, split: the
        command goes out now, its reply is read by the returned call (``Store.start``)."""
        split = self._split(method, args)
        if split is None:  # not split, or a CAS to a non-CAS value, which ``cas`` answers at once
            return super().start(method, *args)
        command, parse = split
        return self.client.start(lambda c: meta.send(c, command),
                                 lambda c: parse(*meta.replies(c, 1)[0]))

    def start_many(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Callable[[], Any]]:
        """Several commands in one write on one connection, their replies read together."""
        try:
            splits = [self._split(method, args) for method, args in commands]
        except MSMError:  # too large for the node: each command answers for itself
            return super().start_many(commands)
        if len(commands) < 2 or any(split is None for split in splits):
            return super().start_many(commands)
        sent = b"".join(split[0] for split in splits if split)
        parses = [split[1] for split in splits if split]
        replies = Replies(self.client.start(
            lambda c: meta.send(c, sent),
            lambda c: [parse(*reply) for parse, reply in
                       zip(parses, meta.replies(c, len(parses)), strict=True)],
        ), len(parses))
        return [replies.member(index) for index in range(len(parses))]

    def _split(self, method: str, args: tuple[Any, ...]) -> tuple[bytes, Parse] | None:
        """The one meta command ``method(*args)`` sends, and how its reply becomes the answer;
        None for the commands that are not split."""
        if method == "get_versioned":
            return meta.get_versioned_command(*args), meta.versioned
        if method == "cas" and not args[3].isdigit():
            return None
        flags = b"C" + args[3] if method == "cas" else _ADD_FLAGS.get(method)
        if flags is None:
            return None
        key, value, ttl = args[:3]
        if method == "add":
            return self._ms(key, value, ttl, flags), lambda header, _: _stored(header)
        return self._ms(key, value, ttl, flags), lambda header, _: _cas(header)

    def get_many_versioned(self, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """One ``gets`` for the whole batch: memcached answers every key in one reply."""
        return self.client.run(Client.gets_many, keys) if keys else {}

    def add_many_versioned(self, items: list[tuple[str, bytes, int]]) -> list[bytes | None]:
        """Every ``ms ... ME`` written at once, one reply line read per item."""
        if not items:
            return []
        commands = [b"ms %s %d T%d ME c\r\n%s\r\n" % (key.encode(), len(value),
                                                       self._exp(ttl), value)
                    for key, value, ttl in items]
        return self.client.run(_meta_many, commands)

    def delete_if(self, key: str, token: bytes) -> bool:
        if not token.isdigit():
            return False  # not a CAS value: it cannot match (and would break the command)
        return self.client.run(_deleted, b"md %s C%s" % (key.encode(), token))

    # Locks: `ms ... ME` creates the item only if absent and returns its CAS; `md ... C<cas>`
    # deletes it only if the CAS still matches, so a late release never frees the next owner's
    # lock. memcached expires items on whole seconds of its own clock, which could end a lock
    # up to a second early; so the item lives one second longer and carries its exact deadline,
    # and a waiter takes over a lock past its deadline with a compare-and-set on its CAS. The
    # proof is "<cas> <deadline>": a release past the deadline still deletes the item if no one
    # took it over, but answers False (the lock expired before it was released).
    def lock(self, key: str, token: bytes, ttl: float) -> bytes | None:
        deadline = self.clock.time() + ttl
        value = b"%s %.6f" % (token, deadline)
        life = math.ceil(ttl) + 1
        cas = self._meta_set(key, value, life, b"ME")
        if cas is None:
            held, held_cas = self.get_versioned(key)
            if held is None or held_cas is None:  # released meanwhile: one more try, the
                cas = self._meta_set(key, value, life, b"ME")  # caller's loop does the rest
            elif _deadline(held) <= self.clock.time():
                cas = self._meta_set(key, value, life, b"C" + held_cas)
        return None if cas is None else b"%s %.6f" % (cas, deadline)

    def unlock(self, key: str, proof: bytes) -> bool:
        deleted = self.delete_if(key, proof.partition(b" ")[0])
        return deleted and _deadline(proof) > self.clock.time()

    def ping(self) -> None:
        self.client.run(Client.version)

    def drop_connections(self) -> None:
        """Close the idle pooled connections; new ones are opened on demand (and the item size
        limit asked again: a restarted node may have another). One in use is closed by its own
        thread when its command ends (``stores.pool``)."""
        self._item_limit = None
        self.client.clear()
        if self.backup_client is not self.client:
            self.backup_client.clear()

    def close(self) -> None:
        self.drop_connections()
