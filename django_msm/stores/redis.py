"""Redis nodes through redis-py and django-redis: one client per node, no protocol code here.

Where the client comes from depends on the node form (DESIGN.md, MEMCACHED_NODES):

* ``id:redis://host:port/db``, ``id:rediss://…`` and msm's single ``redis://host``: clients of
  our own from ``redis.Redis.from_url``, pooled and thread-safe, with connect and read timeouts
  of ``OPERATION_TIMEOUT`` (``SESSION_BACKUP_TIMEOUT`` for backup copies and tombstones, on a
  second pool) and no retries: a retry would multiply the bound, and the core's health view
  already decides when to try a node again.
* ``id:cache:ALIAS``: the raw client django-redis built for that ``CACHES`` entry, so its pools,
  Sentinel client, socket timeouts and options apply (to backup writes too: its timeouts are
  the cache's). django-redis owns it; we never close it. ``django_msm.runtime`` resolves the
  alias and passes the client in: this module knows nothing of Django.

Each Store call is one atomic Redis command: ``add`` is ``SET NX EX``, ``replace`` is
``SET XX EX`` (an update never resurrects a deleted session), ``touch`` is ``EXPIRE``, a lock is
``SET NX PX`` released by a compare-and-delete script, ``cas`` a compare-and-set script.
Redis rejects a zero or negative ``EX``, so ``ttl <= 0`` ("already expired", as in memcached)
becomes a delete or an existence check with the same answer memcached would give.

Our own clients' commands go over redis-py's connections held in a lean pool
(``stores.pool.Connections``), not through ``Redis.execute_command``: its pool, observability
hooks and retry wrapper cost about 19 µs of CPU around a 15 µs GET. redis-py connects and
authenticates; the commands and replies themselves are ``stores.resp``'s (``stores.redis_wire``).
A reused connection is polled first, as redis-py's pool does, so one that the server closed (a
restart) is reconnected rather than failed. A django-redis client keeps its own pool and
options: its commands go through ``execute_command``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from ..core.nodes import Node, NodeKind
from ..exceptions import ConfigurationError, NodeUnavailable
from . import redis_wire as wire
from .base import Store, value_token
from .pool import Connections, Replies
from .redis_scripts import CAS_SCRIPT, DELETE_IF_SCRIPT, SHA, UNLOCK_SCRIPT, VERSION_SCRIPT

if TYPE_CHECKING:
    from redis import Redis
    from redis.connection import ConnectionInterface as Connection

logger = logging.getLogger(__name__)


def _refused(exc: BaseException) -> bool:
    """True if a connection refusal is anywhere in the chain (redis-py re-raises OSErrors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _unavailable(node: Node, exc: BaseException) -> NodeUnavailable:
    return NodeUnavailable(node.label, exc, refused=_refused(exc))


def url_client(url: str, timeout: float) -> Redis:
    """Build a pooled client for a ``redis://``/``rediss://`` URL, bounded by ``timeout``.

    Query parameters of the URL (``?socket_timeout=…``, ``?ssl_ca_certs=…``) take precedence,
    as they do in redis-py.
    """
    from redis import Redis

    return Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class RedisStore(Store):
    """A Redis node: one thread-safe redis-py client, shared by every request of the process."""

    def __init__(
        self,
        node: Node,
        timeout: float,
        backup_timeout: float | None = None,
        client: Redis | None = None,
    ):
        super().__init__(node)
        self.owns_client = client is None and node.kind is NodeKind.REDIS
        if client is not None:
            self.client = client
        elif node.kind is NodeKind.CACHE:
            msg = f"node {node.label!r}: a cache:ALIAS node needs the alias's client passed in"
            raise ConfigurationError(msg)
        else:
            self.client = url_client(node.address, timeout)
        self.backup_client = self.client
        if self.owns_client and backup_timeout and backup_timeout != timeout:
            self.backup_client = url_client(node.address, backup_timeout)
        self._pool = self._lean(self.client)
        self._backup_pool = (
            self._pool if self.backup_client is self.client else self._lean(self.backup_client)
        )

    def _lean(self, client: Redis) -> Connections[Connection]:
        return Connections(
            client.connection_pool.make_connection, wire.disconnect, self._failed, wire.freshen
        )

    def _failed(self, exc: BaseException) -> None:
        """Turn redis-py and socket errors into NodeUnavailable; a script the server does not
        know (yet) passes, for ``_script`` to send in full."""
        if isinstance(exc, (RedisError, OSError)) and not isinstance(exc, NoScriptError):
            raise _unavailable(self.node, exc) from exc

    def _run(self, *args: object) -> Any:
        """One command on the node (main timeout), its raw reply."""
        if self.owns_client:
            return self._pool.run(wire.command, *args)
        try:
            return self.client.execute_command(*args)
        except BaseException as exc:
            self._failed(exc)
            raise

    def _run_backup(self, *args: object) -> Any:
        """One command within the backup timeout (a django-redis client has only its own)."""
        if self.owns_client:
            return self._backup_pool.run(wire.command, *args)
        return self._run(*args)

    def _script(self, script: str, key: str, *args: object) -> Any:
        """``EVALSHA`` of a script of ``stores.redis_scripts``, ``EVAL`` when the server lost
        it (a restart, ``SCRIPT FLUSH``): Redis then keeps it for the next ``EVALSHA``."""
        try:
            return self._run("EVALSHA", SHA[script], 1, key, *args)
        except NoScriptError:
            return self._run("EVAL", script, 1, key, *args)

    def get(self, key: str) -> bytes | None:
        return self._run("GET", key)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            return not self._run("EXISTS", key)
        return bool(self._run("SET", key, value, "EX", ttl, "NX"))

    def replace(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            return bool(self._run("DEL", key))
        return bool(self._run("SET", key, value, "EX", ttl, "XX"))

    def set(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            self._run_backup("DEL", key)
        else:
            self._run_backup("SET", key, value, "EX", ttl)

    def touch(self, key: str, ttl: int) -> bool:
        if ttl <= 0:
            return bool(self._run("DEL", key))
        return bool(self._run("EXPIRE", key, ttl))

    def delete(self, key: str) -> bool:
        return bool(self._run("DEL", key))

    def version(self, key: str) -> bytes | None:
        """The SHA-1 token of the stored value, computed by Redis so the value stays there."""
        token = self._script(VERSION_SCRIPT, key)
        return None if token is None else bytes(token)

    def get_many_versioned(self, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """One ``MGET`` for the batch; tokens are the values' SHA-1, as ``version`` gives."""
        values: list[bytes | None] = self._run("MGET", *keys) if keys else []
        return {k: (v, value_token(v)) for k, v in zip(keys, values, strict=True) if v is not None}

    def add_many_versioned(self, items: list[tuple[str, bytes, int]]) -> list[bytes | None]:
        """One pipeline of ``SET NX EX`` (not a transaction: each item stands alone)."""
        commands = [("SET", key, value, "EX", ttl, "NX") for key, value, ttl in items if ttl > 0]
        answers = iter(self._pipeline(commands) if commands else [])
        return [value_token(value) if ttl > 0 and next(answers) else None
                for _, value, ttl in items]

    def _pipeline(self, commands: Sequence[tuple[object, ...]]) -> list[Any]:
        if self.owns_client:
            return self._pool.run(wire.pipelined, commands)
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            return pipe.execute()
        except BaseException as exc:
            self._failed(exc)
            raise

    def start(self, method: str, *args: Any) -> Callable[[], Any]:
        """The commands a create and the per-user index send to two nodes at once, split on
        our own connections (``Store.start``); a django-redis client runs them at once."""
        split = self._split(method, *args) if self.owns_client else None
        if split is None:
            return super().start(method, *args)
        return self._pool.start(lambda conn: wire.send(conn, [split[0]]),
                                lambda conn: wire.answers(conn, [split])[0])

    def start_many(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Callable[[], Any]]:
        """Several commands in one write on one connection (a pipeline), replies read together."""
        try:
            splits = [self._split(method, *args) for method, args in commands]
        except Exception:  # a command that is not split: each answers for itself
            splits = []
        if not self.owns_client or len(splits) < 2 or any(split is None for split in splits):
            return super().start_many(commands)
        ready = [split for split in splits if split is not None]
        packed = [command for command, _ in ready]
        replies = Replies(self._pool.start(
            lambda conn: wire.send(conn, packed),
            lambda conn: wire.answers(conn, ready),
        ), len(ready))
        return [replies.member(index) for index in range(len(ready))]

    @staticmethod
    def _split(method: str, *args: Any) -> wire.Split | None:
        """The one command ``method(*args)`` sends, and how its reply becomes the answer."""
        if method == "get_versioned":
            return ("GET", *args), lambda v: (None, None) if v is None else (v, value_token(v))
        key, value, ttl = args[:3]
        if ttl <= 0:
            return None  # a delete or an existence check: not split
        if method == "add":
            return ("SET", key, value, "EX", ttl, "NX"), bool
        if method == "add_versioned":
            token = value_token(value)
            return ("SET", key, value, "EX", ttl, "NX"), lambda done: token if done else None
        if method == "cas":
            command = ("EVALSHA", SHA[CAS_SCRIPT], 1, key, args[3], value, ttl)
            return command, lambda done: value_token(value) if done else None
        return None

    def cas(self, key: str, value: bytes, ttl: int, token: bytes) -> bytes | None:
        """One script, so the compare and the set are atomic (and touch one key: Cluster-safe)."""
        if ttl <= 0:
            self._script(DELETE_IF_SCRIPT, key, token)
            return None
        done = self._script(CAS_SCRIPT, key, token, value, ttl)
        return value_token(value) if done else None

    def delete_if(self, key: str, token: bytes) -> bool:
        return bool(self._script(DELETE_IF_SCRIPT, key, token))

    def lock(self, key: str, token: bytes, ttl: float) -> bytes | None:
        """``SET NX PX``: the token is both the lock's value and the proof that releases it."""
        taken = self._run("SET", key, token, "PX", max(1, math.ceil(ttl * 1000)), "NX")
        return token if taken else None

    def unlock(self, key: str, proof: bytes) -> bool:
        return bool(self._script(UNLOCK_SCRIPT, key, proof))

    def ping(self) -> None:
        self._run("PING")

    def close(self) -> None:
        """Close our own pools; a django-redis client belongs to its cache and stays open."""
        if self.owns_client:
            self._pool.clear()
            self._backup_pool.clear()
            self.client.close()
            if self.backup_client is not self.client:
                self.backup_client.close()
