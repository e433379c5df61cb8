"""The composition root: builds this process's cluster from the settings, once.

Everything Django-specific that the core must not know is resolved here and passed down: the
validated settings (``checks`` then ``conf``), the clients of ``cache:ALIAS`` nodes (django-redis),
and the Django signals the core's events become. The config and the cluster are process-global
on purpose: connection pools and the health view must be shared by all requests of a process (a
per-request or per-thread view would re-learn every failure, which is what makes Django's
per-thread cache clients disagree about dead nodes). Both are built lazily under a lock and
dropped whenever a setting they depend on changes (``setting_changed``), so
``override_settings`` works in tests.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import signals
from .checks import validate
from .clock import Clock, SystemClock
from .conf import WATCHED_SETTINGS, build_config
from .core.cluster import Cluster
from .core.config import MsmConfig
from .core.events import ClusterEvents
from .core.failover import MoveReason
from .core.nodes import Node, NodeKind
from .core.registry import NodeRegistry
from .exceptions import ConfigurationError
from .ops.autorepair import AutoRepair
from .stores import Store, create_store


@functools.cache
def get_config() -> MsmConfig:
    """Return the validated config; raise ConfigurationError naming the first problem."""
    errors = [message for message in validate() if message.is_serious()]
    if errors:
        first = errors[0]
        raise ConfigurationError(f"{first.id}: {first.msg} ({first.hint})")
    return build_config()


class SignalEvents(ClusterEvents):
    """The core's events as the Django signals of ``django_msm.signals``; with AUTO_REPAIR,
    they also wake this process's repair thread (``ops.autorepair``)."""

    def __init__(self) -> None:
        self.repair: AutoRepair | None = None

    def node_down(self, node_id: str, error: str) -> None:
        self._wake()
        signals.node_down.send(sender=Cluster, node_id=node_id, error=error)

    def node_up(self, node_id: str) -> None:
        self._wake()
        signals.node_up.send(sender=Cluster, node_id=node_id)

    def backup_failed(self, node_id: str) -> None:
        self._wake(forced=True)

    def repair_needed(self, reason: str) -> None:
        self._wake()

    def _wake(self, forced: bool = False) -> None:
        if self.repair is not None:
            self.repair.wake(forced)

    def session_moved(self, reason: MoveReason, old_key: str, new_key: str) -> None:
        signal = (
            signals.session_taken_over
            if reason is MoveReason.TAKEOVER
            else signals.session_relocated
        )
        signal.send(sender=Cluster, old_key=old_key, new_key=new_key)

    def session_ended(self, user_id: str, session_key: str, reason: str) -> None:
        signals.session_ended.send(
            sender=Cluster, user_id=user_id, session_key=session_key, reason=reason
        )


def cache_client(alias: str) -> Any:
    """Return django-redis's raw write client for a ``CACHES`` alias (no I/O happens here)."""
    from django.core.cache import InvalidCacheBackendError
    from django_redis import get_redis_connection

    try:
        return get_redis_connection(alias, write=True)
    except (InvalidCacheBackendError, NotImplementedError) as exc:
        msg = f"cache alias {alias!r} is not a django-redis cache: {exc}"
        raise ConfigurationError(msg) from exc


def build_stores(config: MsmConfig, clock: Clock) -> dict[Node, Store]:
    """One store adapter per configured node, ``cache:ALIAS`` clients resolved here."""
    return {
        node: create_store(
            node,
            config.operation_timeout,
            config.backup_timeout,
            clock,
            cache_client(node.address) if node.kind is NodeKind.CACHE else None,
        )
        for node in config.nodes
    }


def build_cluster(config: MsmConfig, clock: Clock | None = None) -> Cluster:
    """The process's cluster for ``config``, its events sent as Django signals, with automatic
    repair when AUTO_REPAIR is on (a thread started only when a pass may be due)."""
    clock = clock or SystemClock()
    events = SignalEvents()
    cluster = Cluster(config, clock, build_stores(config, clock), events)
    if config.auto_repair and len(config.nodes) > 1:
        events.repair = AutoRepair(cluster)
        cluster.on_close.append(events.repair.stop)
    return cluster


_cluster: Cluster | None = None
_cluster_lock = threading.Lock()


def get_cluster() -> Cluster:
    """Return the process's cluster, building it from the settings on first use."""
    global _cluster
    cluster = _cluster
    if cluster is None:
        with _cluster_lock:
            if _cluster is None:
                _cluster = build_cluster(get_config())
            cluster = _cluster
    return cluster


def get_registry() -> NodeRegistry:
    """Return the process's node registry (nodes, stores, health)."""
    return get_cluster().registry


def reset_cluster() -> None:
    """Drop the cluster (settings changed, or a test wants a fresh health view)."""
    global _cluster
    with _cluster_lock:
        if _cluster is not None:
            _cluster.close()
        _cluster = None


def install_cluster(cluster: Cluster) -> None:
    """Make ``cluster`` the process's (tests and tools that play several app processes in one,
    each with its own health view or clock); the one it replaces is closed."""
    global _cluster
    with _cluster_lock:
        if _cluster is not None:
            _cluster.close()
        _cluster = cluster


reset_registry = reset_cluster  # the name operators' scripts and older tests know


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED_SETTINGS:
        get_config.cache_clear()
        reset_cluster()
