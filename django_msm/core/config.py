"""MsmConfig: the typed, validated settings the core works with (no Django here).

``django_msm.conf`` builds it from ``settings.DJANGO_MSM`` after ``django_msm.checks`` has
validated them; the core only ever sees this frozen object, so it can be built by hand in
tests and tools.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Any

from .keys import KeyLayout
from .nodes import Node


class LockingMode(enum.Enum):
    """LOCKING_MODE: which requests take the session lock before the first load."""

    NONE = "none"
    ALL = "all"
    AUTO = "auto"  # until the (method, view) pair is seen to leave the session unchanged
    URI = "uriPattern"  # requests whose path matches the pattern


class LockTimeoutPolicy(enum.Enum):
    """LOCK_TIMEOUT_POLICY: what a request does when the lock cannot be had in time."""

    FAIL = "fail"  # LockTimeout: the middleware answers 503
    PROCEED = "proceed"  # go on unlocked with a warning, as msm does


@dataclass(frozen=True)
class MsmConfig:
    """The typed, validated settings the core works with."""

    nodes: tuple[Node, ...]
    operation_timeout: float
    storage_prefix: str
    max_session_size: int
    compress_min_size: int
    retry_timeout: float
    retry_attempts: int
    serializer: Any
    signing_keys: tuple[bytes, ...]
    sticky: bool = False
    route: str | None = None
    ignore_pattern: re.Pattern[str] | None = None
    backup_async: bool = False
    backup_threads: int = 1
    backup_queue_size: int = 1000
    backup_timeout: float = 0.1
    local_cache_entries: int = 10_000
    local_cache_bytes: int = 64 * 1024 * 1024
    host_version_slots: int = 65_536
    host_version_trust: float = 1.0
    locking_mode: LockingMode = LockingMode.NONE
    lock_pattern: re.Pattern[str] | None = None
    lock_expiration: float = 5.0
    lock_wait: float = 1.0
    lock_timeout_policy: LockTimeoutPolicy = LockTimeoutPolicy.FAIL
    enable_statistics: bool = True
    attribute_filter: re.Pattern[str] | None = None
    # The longest a session may live (SESSION_COOKIE_AGE): how long marks must be kept.
    session_lifetime: int = 1_209_600
    # Self-healing redundancy (ops.repair): automatic passes, their rate, node changes.
    auto_repair: bool = True
    repair_rate: int = 10_000
    draining: frozenset[str] = frozenset()  # configured ids taking no new sessions or backups
    retired: tuple[str, ...] = ()  # ids no longer configured whose keys are still honoured

    @functools.cached_property
    def keys(self) -> KeyLayout:
        """Every stored key form under this prefix (built once per config)."""
        return KeyLayout(self.storage_prefix)
