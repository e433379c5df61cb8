"""MsmConfig: the typed, validated settings the core works with (no Django here).

``django_msm.conf`` builds it from ``settings.DJANGO_MSM`` after ``django_msm.checks`` has
validated them; the core only ever sees this frozen object, so it can be built by hand in
tests and tools.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .keys import PROCESS_TAG_SECRET, KeyLayout, KeyTag, SessionId
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
    # The per-user index of sessions (core.user_index) and what its entries record.
    user_sessions: bool = True
    record_ip: bool = False
    record_user_agent: bool = True
    user_touch_interval: float = 300.0
    user_sessions_max: int = 100
    end_sessions_on_password_change: bool = False
    # The session entry naming its user (django.contrib.auth's SESSION_KEY).
    user_field: str = "_auth_user_id"
    # Self-healing redundancy (ops.repair): automatic passes, their rate, node changes.
    auto_repair: bool = True
    repair_rate: int = 10_000
    draining: frozenset[str] = frozenset()  # configured ids taking no new sessions or backups
    retired: tuple[str, ...] = ()  # ids no longer configured whose keys are still honoured

    @functools.cached_property
    def keys(self) -> KeyLayout:
        """Every stored key form under this prefix (built once per config)."""
        return KeyLayout(self.storage_prefix)

    @functools.cached_property
    def tag_secret(self) -> bytes:
        """The secret of ``keys.key_tag`` for this deployment, derived one-way from the signing
        key (``SECRET_KEY``): every process of a deployment tags a session alike, so log lines
        of different processes correlate, and a tag reveals nothing of the signing key."""
        if not self.signing_keys:
            return PROCESS_TAG_SECRET
        derived = hashlib.blake2b(self.signing_keys[0], digest_size=32, person=b"msm-tag-secret")
        return derived.digest()

    def tag(self, key: SessionId | str) -> KeyTag:
        """What stands for a session key in a log line or an error message (``#3fa9c1``)."""
        return KeyTag(key, self.tag_secret)
