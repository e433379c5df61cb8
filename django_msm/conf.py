"""The one reader of the ``DJANGO_MSM`` setting.

This module only reads: it merges ``DJANGO_MSM`` over the defaults and turns a valid dict into
the core's frozen ``MsmConfig``. Validation lives in ``checks.py``; ``runtime.py`` validates,
builds and caches the config, and drops it whenever a setting it depends on changes
(``setting_changed``), so ``override_settings`` works in tests.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils.module_loading import import_string

from .core.config import LockingMode, LockTimeoutPolicy, MsmConfig
from .core.nodes import Node, NodeKind, parse_nodes, split_spec

# ENABLED=False: one process-local node without id; no memcached is touched.
LOCAL_NODE = Node(None, NodeKind.MEMORY, "process-local")

CONFIG_DEFAULTS: dict[str, Any] = {
    "MEMCACHED_NODES": "127.0.0.1:11211",
    "FAILOVER_NODES": "",
    "STICKY": False,
    "ROUTE": None,
    "REQUEST_URI_IGNORE_PATTERN": None,
    "SESSION_BACKUP_ASYNC": False,
    "BACKUP_THREAD_COUNT": None,  # None: the CPU count
    "BACKUP_QUEUE_SIZE": 1000,
    "SESSION_BACKUP_TIMEOUT": 0.1,
    "OPERATION_TIMEOUT": 1.0,
    "STORAGE_KEY_PREFIX": "",
    "ENABLED": True,
    "MAX_SESSION_SIZE": 1_000_000,
    "COMPRESS_MIN_SIZE": 4096,
    "RETRY_TIMEOUT": 1.0,
    "RETRY_ATTEMPTS": 2,
    "LOCAL_CACHE_ENTRIES": 10_000,
    "LOCAL_CACHE_BYTES": 64 * 1024 * 1024,
    "HOST_VERSION_SLOTS": 65_536,  # sticky + ROUTE: the host's shared version table; 0 = off
    "HOST_VERSION_TRUST": 1.0,
    "LOCKING_MODE": "none",
    "LOCK_EXPIRATION": 5.0,
    # None: LOCK_EXPIRATION, as long as a lock may be held (msm waited OPERATION_TIMEOUT:
    # 503s under load, issue 12); checks.W027 warns of shorter waits.
    "LOCK_WAIT_TIMEOUT": None,
    "LOCK_TIMEOUT_POLICY": "fail",  # or "proceed": run unlocked with a warning, as msm does
    "ENABLE_STATISTICS": True,
    "SESSION_ATTRIBUTE_FILTER": None,
    "USER_SESSIONS": True,  # the per-user index: list a user's sessions, end them
    "USER_SESSIONS_RECORD_IP": False,  # personal data: off unless the site has a purpose
    "USER_SESSIONS_RECORD_USER_AGENT": True,  # what lets a user recognise a device
    "USER_SESSIONS_TOUCH_INTERVAL": 300.0,  # last_seen is at most this old
    "USER_SESSIONS_MAX": 100,  # sessions per user; beyond, the least recently seen ends
    "END_SESSIONS_ON_PASSWORD_CHANGE": False,
    "AUTO_REPAIR": True,  # one app process restores two copies of every session after a fault
    "REPAIR_RATE": 10_000,  # sessions a repair pass examines per second
    "DRAINING_NODES": "",  # configured ids: no new sessions or backups; sessions read there move
    "RETIRED_NODES": "",  # ids removed from MEMCACHED_NODES: their keys are found on the others
}

# Django settings whose change invalidates the cached config.
WATCHED_SETTINGS = frozenset(
    {
        "DJANGO_MSM",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "SESSION_SERIALIZER",
        "SESSION_COOKIE_AGE",
        "CACHES",
    }
)
SIGNING_SALT = b"django_msm.envelope"


def raw_settings() -> dict[str, Any]:
    """Return DJANGO_MSM merged over the defaults (unvalidated)."""
    user = getattr(settings, "DJANGO_MSM", {})
    merged = dict(CONFIG_DEFAULTS)
    if isinstance(user, dict):
        merged.update(user)
    return merged


def storage_prefix(value: str) -> str:
    """Build msm's storage key prefix: ``static:x`` tokens joined by ``:``, then ``_``."""
    parts = [token.split(":", 1)[1] for token in split_spec(value)]
    joined = ":".join(part for part in parts if part)
    return f"{joined}_" if joined else ""


def _signing_keys() -> tuple[bytes, ...]:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return tuple(hashlib.sha256(SIGNING_SALT + str(s).encode()).digest() for s in secrets)


def _ordered_nodes(raw: dict[str, Any]) -> tuple[Node, ...]:
    """Regular nodes in configured order, then failover nodes: the backup walk order."""
    failover_ids = set(split_spec(raw["FAILOVER_NODES"]))
    nodes = [
        Node(n.id, n.kind, n.address, failover=n.id in failover_ids)
        for n in parse_nodes(raw["MEMCACHED_NODES"])
    ]
    return tuple(sorted(nodes, key=lambda node: node.failover))


def build_config() -> MsmConfig:
    """Turn the (already validated) settings into the core's config."""
    raw = raw_settings()
    return MsmConfig(
        nodes=_ordered_nodes(raw) if raw["ENABLED"] else (LOCAL_NODE,),
        operation_timeout=float(raw["OPERATION_TIMEOUT"]),
        storage_prefix=storage_prefix(raw["STORAGE_KEY_PREFIX"]),
        max_session_size=int(raw["MAX_SESSION_SIZE"]),
        compress_min_size=int(raw["COMPRESS_MIN_SIZE"]),
        retry_timeout=float(raw["RETRY_TIMEOUT"]),
        retry_attempts=int(raw["RETRY_ATTEMPTS"]),
        serializer=import_string(settings.SESSION_SERIALIZER),
        signing_keys=_signing_keys(),
        sticky=bool(raw["STICKY"]),
        route=raw["ROUTE"],
        ignore_pattern=_compiled(raw["REQUEST_URI_IGNORE_PATTERN"]),
        backup_async=bool(raw["SESSION_BACKUP_ASYNC"]),
        backup_threads=int(raw["BACKUP_THREAD_COUNT"] or os.cpu_count() or 1),
        backup_queue_size=int(raw["BACKUP_QUEUE_SIZE"]),
        backup_timeout=float(raw["SESSION_BACKUP_TIMEOUT"]),
        local_cache_entries=int(raw["LOCAL_CACHE_ENTRIES"]),
        local_cache_bytes=int(raw["LOCAL_CACHE_BYTES"]),
        host_version_slots=int(raw["HOST_VERSION_SLOTS"]),
        host_version_trust=float(raw["HOST_VERSION_TRUST"]),
        enable_statistics=bool(raw["ENABLE_STATISTICS"]),
        attribute_filter=_compiled(raw["SESSION_ATTRIBUTE_FILTER"]),
        session_lifetime=int(settings.SESSION_COOKIE_AGE),
        auto_repair=bool(raw["AUTO_REPAIR"]),
        repair_rate=int(raw["REPAIR_RATE"]),
        draining=frozenset(split_spec(raw["DRAINING_NODES"])),
        retired=tuple(split_spec(raw["RETIRED_NODES"])),
        **_locking(raw),
        **_user_sessions(raw),
    )


def _user_sessions(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_sessions": bool(raw["USER_SESSIONS"]),
        "record_ip": bool(raw["USER_SESSIONS_RECORD_IP"]),
        "record_user_agent": bool(raw["USER_SESSIONS_RECORD_USER_AGENT"]),
        "user_touch_interval": float(raw["USER_SESSIONS_TOUCH_INTERVAL"]),
        "user_sessions_max": int(raw["USER_SESSIONS_MAX"]),
        "end_sessions_on_password_change": bool(raw["END_SESSIONS_ON_PASSWORD_CHANGE"]),
        "user_field": SESSION_KEY,
    }


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _locking(raw: dict[str, Any]) -> dict[str, Any]:
    mode, _, pattern = str(raw["LOCKING_MODE"]).partition(":")
    return {
        "locking_mode": LockingMode(mode),
        "lock_pattern": re.compile(pattern) if mode == LockingMode.URI.value else None,
        "lock_expiration": float(raw["LOCK_EXPIRATION"]),
        "lock_wait": float(raw["LOCK_WAIT_TIMEOUT"] or raw["LOCK_EXPIRATION"]),
        "lock_timeout_policy": LockTimeoutPolicy(raw["LOCK_TIMEOUT_POLICY"]),
    }
