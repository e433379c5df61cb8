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
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ..core.nodes import Node, NodeKind
from ..exceptions import ConfigurationError, NodeUnavailable
from .base import Store, value_token

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Returns the SHA-1 of the value, computed on the server: a version token without moving the
# value (the same token ``stores.base.value_token`` derives from the bytes), or nil on a miss.
# KEYS[1] - the session's storage key
VERSION_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
return redis.sha1hex(value)
"""
# Compare-and-set: rewrites the value only if its SHA-1 is still the caller's token; returns
# the new value's SHA-1, or nil when the item changed or is gone.
# KEYS[1] - the storage key
# ARGV[1] - the token the caller read; ARGV[2] - the new value; ARGV[3] - ttl in seconds
CAS_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value or redis.sha1hex(value) ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return redis.sha1hex(ARGV[2])
"""
# Compare-and-delete by token: deletes the item only if its SHA-1 is still ARGV[1].
# KEYS[1] - the storage key
# ARGV[1] - the token the caller read
DELETE_IF_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and redis.sha1hex(value) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Deletes a lock only if it still holds this owner's token; returns 1 if it did, else 0.
# KEYS[1] - the lock key
# ARGV[1] - the owner token the lock was taken with
UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


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


def _wrap_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Turn redis-py and socket errors into NodeUnavailable, refusals marked as such."""

    @functools.wraps(method)
    def wrapper(self: RedisStore, *args: object) -> T:
        try:
            return method(self, *args)
        except (RedisError, OSError) as exc:
            raise NodeUnavailable(self.node.label, exc, refused=_refused(exc)) from exc

    return wrapper


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
        self._version = self.client.register_script(VERSION_SCRIPT)
        self._unlock = self.client.register_script(UNLOCK_SCRIPT)
        self._cas = self.client.register_script(CAS_SCRIPT)
        self._delete_if = self.client.register_script(DELETE_IF_SCRIPT)

    @_wrap_errors
    def get(self, key: str) -> bytes | None:
        return self.client.get(key)  # type: ignore[return-value]

    @_wrap_errors
    def add(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            return not self.client.exists(key)
        return bool(self.client.set(key, value, ex=ttl, nx=True))

    @_wrap_errors
    def replace(self, key: str, value: bytes, ttl: int) -> bool:
        if ttl <= 0:
            return bool(self.client.delete(key))
        return bool(self.client.set(key, value, ex=ttl, xx=True))

    @_wrap_errors
    def set(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            self.backup_client.delete(key)
        else:
            self.backup_client.set(key, value, ex=ttl)

    @_wrap_errors
    def touch(self, key: str, ttl: int) -> bool:
        if ttl <= 0:
            return bool(self.client.delete(key))
        return bool(self.client.expire(key, ttl))

    @_wrap_errors
    def delete(self, key: str) -> bool:
        return bool(self.client.delete(key))

    @_wrap_errors
    def version(self, key: str) -> bytes | None:
        """The SHA-1 token of the stored value, computed by Redis so the value stays there."""
        token = self._version(keys=[key])
        return None if token is None else bytes(token)

    @_wrap_errors
    def get_many_versioned(self, keys: list[str]) -> dict[str, tuple[bytes, bytes]]:
        """One ``MGET`` for the batch; tokens are the values' SHA-1, as ``version`` gives."""
        values: list[bytes | None] = self.client.mget(keys) if keys else []  # type: ignore[assignment]
        return {k: (v, value_token(v)) for k, v in zip(keys, values, strict=True) if v is not None}

    @_wrap_errors
    def add_many_versioned(self, items: list[tuple[str, bytes, int]]) -> list[bytes | None]:
        """One pipeline of ``SET NX EX`` (not a transaction: each item stands alone)."""
        pipe = self.client.pipeline(transaction=False)
        for key, value, ttl in items:
            if ttl > 0:
                pipe.set(key, value, ex=ttl, nx=True)
        answers = iter(pipe.execute() if items else [])
        return [value_token(value) if ttl > 0 and next(answers) else None
                for _, value, ttl in items]

    @_wrap_errors
    def cas(self, key: str, value: bytes, ttl: int, token: bytes) -> bytes | None:
        """One script, so the compare and the set are atomic (and touch one key: Cluster-safe)."""
        if ttl <= 0:
            self._delete_if(keys=[key], args=[token])
            return None
        new = self._cas(keys=[key], args=[token, value, ttl])
        return None if new is None else bytes(new)

    @_wrap_errors
    def delete_if(self, key: str, token: bytes) -> bool:
        return bool(self._delete_if(keys=[key], args=[token]))

    @_wrap_errors
    def lock(self, key: str, token: bytes, ttl: float) -> bytes | None:
        """``SET NX PX``: the token is both the lock's value and the proof that releases it."""
        taken = self.client.set(key, token, px=max(1, math.ceil(ttl * 1000)), nx=True)
        return token if taken else None

    @_wrap_errors
    def unlock(self, key: str, proof: bytes) -> bool:
        return bool(self._unlock(keys=[key], args=[proof]))

    @_wrap_errors
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        """Close our own pools; a django-redis client belongs to its cache and stays open."""
        if self.owns_client:
            self.client.close()
            if self.backup_client is not self.client:
                self.backup_client.close()
