"""System checks: the one validator of ``DJANGO_MSM``. Ids are never reused.

Every message is a module constant (or built from one) and is tested by exact equality.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

from .conf import CONFIG_DEFAULTS, raw_settings, storage_prefix
from .core.keys import MAX_KEY_LENGTH, NAME_RE
from .core.nodes import Node, NodeKind, NodeSpecError, duplicate_ids, parse_nodes, split_spec

E001 = "DJANGO_MSM must be a dict."
E002 = "DJANGO_MSM has unknown key {key!r}."
E003 = "DJANGO_MSM['MEMCACHED_NODES'] is invalid: {error}."
E004 = "DJANGO_MSM['MEMCACHED_NODES'] repeats node id {node_id!r}."
E005 = "DJANGO_MSM['FAILOVER_NODES'] names unknown node {node_id!r}."
E006 = "DJANGO_MSM['FAILOVER_NODES'] lists every node."
E007 = "DJANGO_MSM['FAILOVER_NODES'] needs nodes with ids."
E008 = "DJANGO_MSM[{key!r}] must be a positive number of seconds."
E009 = "DJANGO_MSM['STORAGE_KEY_PREFIX'] has unsupported token {token!r}."
# E010 ("Redis nodes are not supported yet") is retired: ids are never reused.
E011 = "DJANGO_MSM[{key!r}] must be a positive integer."
# E010 and E012 ("... is not supported yet") are retired: ids are never reused.
E013 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} names cache {alias!r}, which is not in CACHES."
E014 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] is not a django-redis cache."
E015 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] has no socket timeout."
E016 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} has an invalid Redis URL: {error}."
E017 = "DJANGO_MSM['FAILOVER_NODES'] is invalid: {error}."
E018 = "DJANGO_MSM['STORAGE_KEY_PREFIX'] is {length} characters long; the limit is {limit}."
E020 = "DJANGO_MSM['ROUTE'] must be None or letters, digits and '_' (max 32)."
E021 = "DJANGO_MSM['REQUEST_URI_IGNORE_PATTERN'] is not a valid regex: {error}."
E022 = "DJANGO_MSM[{key!r}] must be True or False."
E023 = "DJANGO_MSM['LOCKING_MODE'] is invalid: {value!r}."
E024 = "DJANGO_MSM['LOCKING_MODE'] uriPattern is not a valid regex: {error}."
E025 = "DJANGO_MSM['LOCK_TIMEOUT_POLICY'] must be 'fail' or 'proceed'."
E026 = "DJANGO_MSM['SESSION_ATTRIBUTE_FILTER'] is not a valid regex: {error}."
E027 = "DJANGO_MSM[{key!r}] is invalid: {error}."
E028 = "DJANGO_MSM['DRAINING_NODES'] names unknown node {node_id!r}."
E029 = "DJANGO_MSM['DRAINING_NODES'] lists every regular node."
E030 = "DJANGO_MSM['RETIRED_NODES'] names node {node_id!r}, which is still in MEMCACHED_NODES."
E031 = "DJANGO_MSM['RETIRED_NODES'] has an invalid node id {node_id!r}."

HINT_E001 = "Set DJANGO_MSM = {{'MEMCACHED_NODES': 'n1:host1:11211,n2:host2:11211'}}."
HINT_E002 = "Known keys: {known}."
HINT_E003 = "Use 'id:host:port' entries separated by commas, or a single 'host:port'."
HINT_E004 = "Give every node its own id."
HINT_E005 = "Use ids from MEMCACHED_NODES."
HINT_E006 = "Leave at least one regular node out of FAILOVER_NODES."
HINT_E007 = "Configure two or more nodes as 'id:host:port'."
HINT_E008 = "Use a duration in seconds greater than 0, such as 1.0."
HINT_E009 = "Use 'static:<name>' tokens of letters, digits, '_', '.' and '-'."
HINT_E011 = "Use a whole number greater than 0."
HINT_E013 = "Add CACHES[{alias!r}] with BACKEND 'django_redis.cache.RedisCache'."
HINT_E014 = "Use BACKEND 'django_redis.cache.RedisCache' for it, or an 'id:redis://' node."
HINT_E015 = (
    "Set CACHES[{alias!r}]['OPTIONS']['SOCKET_TIMEOUT'] (seconds, such as 1.0): "
    "without it a hung Redis server holds every request."
)
HINT_E016 = "Use 'id:redis://host:port/db' or 'id:rediss://host:port/db'."
HINT_E017 = "Use node ids separated by commas, such as 'n1', or a list of ids."
HINT_E018 = "Use shorter 'static:<name>' tokens: memcached keys stop at 250 bytes."
HINT_E020 = "Use the instance name the load balancer routes on, such as 'web1'."
HINT_E021 = "Use a Python regex matched against request.path, such as r'\\.(css|js|png)$'."
HINT_E022 = "Use a bool."
HINT_E023 = "Use 'none', 'all', 'auto' or 'uriPattern:<regex>'."
HINT_E024 = "Use a Python regex searched in request.path, such as 'uriPattern:^/cart/'."
HINT_E025 = "Use 'fail' (answer 503 with Retry-After) or 'proceed' (run unlocked, warn)."
HINT_E026 = "Use a Python regex matched against whole session key names, such as 'cart|user_.*'."
HINT_E027 = "Use node ids separated by commas, such as 'n3', or a list of ids."
HINT_E028 = (
    "Use ids from MEMCACHED_NODES; a node already removed from it belongs in RETIRED_NODES."
)
HINT_E029 = "Leave at least one regular node to take new sessions and backups."
HINT_E030 = (
    "Drain it first (DRAINING_NODES, then manage.py msm_drain), then move it from "
    "MEMCACHED_NODES to RETIRED_NODES."
)
HINT_E031 = "Use the id the node had in MEMCACHED_NODES (letters, digits and '_', max 32)."

DURATION_KEYS = (
    "OPERATION_TIMEOUT", "RETRY_TIMEOUT", "LOCK_EXPIRATION", "SESSION_BACKUP_TIMEOUT",
    "HOST_VERSION_TRUST",
)
POSITIVE_INT_KEYS = (
    "MAX_SESSION_SIZE", "COMPRESS_MIN_SIZE", "RETRY_ATTEMPTS", "BACKUP_QUEUE_SIZE",
    "LOCAL_CACHE_ENTRIES", "LOCAL_CACHE_BYTES", "REPAIR_RATE",
)
BOOL_KEYS = ("STICKY", "SESSION_BACKUP_ASYNC", "ENABLED", "ENABLE_STATISTICS", "AUTO_REPAIR")
# memcached keys stop at 250 bytes: "lock:" or "bak:" + prefix + the longest session key.
MAX_PREFIX_LENGTH = 250 - len("lock:") - MAX_KEY_LENGTH
_STATIC_TOKEN = re.compile(r"\Astatic:[A-Za-z0-9_.-]{1,64}\Z")


def _error(msg: str, hint: str, number: int, **fmt: Any) -> Error:
    return Error(msg.format(**fmt), hint=hint.format(**fmt), id=f"django_msm.E{number:03d}")


def _check_nodes(raw: dict[str, Any]) -> list[CheckMessage]:
    try:
        nodes = parse_nodes(raw["MEMCACHED_NODES"])
    except NodeSpecError as exc:
        return [_error(E003, HINT_E003, 3, error=str(exc))]
    errors = [_error(E004, HINT_E004, 4, node_id=dup) for dup in duplicate_ids(nodes)]
    errors += [error for node in nodes for error in _check_redis_node(node)]
    return errors + _check_failover(raw, nodes) + _check_node_changes(raw, nodes)


def _check_redis_node(node: Node) -> list[CheckMessage]:
    """A Redis URL must parse; a cache alias must name a django-redis cache with a timeout."""
    if node.kind is NodeKind.REDIS:
        from redis.connection import parse_url

        try:
            parse_url(node.address)
        except ValueError as exc:
            return [_error(E016, HINT_E016, 16, node=node.label, error=exc)]
        return []
    if node.kind is not NodeKind.CACHE:
        return []
    alias = node.address
    entry = settings.CACHES.get(alias)
    if entry is None:
        return [_error(E013, HINT_E013, 13, node=node.label, alias=alias)]
    if not _is_django_redis(entry.get("BACKEND", "")):
        return [_error(E014, HINT_E014, 14, node=node.label, alias=alias)]
    options = entry.get("OPTIONS", {})
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS", {})
    if not (options.get("SOCKET_TIMEOUT") or pool_kwargs.get("socket_timeout")):
        return [_error(E015, HINT_E015, 15, node=node.label, alias=alias)]
    return []


def _is_django_redis(backend: str) -> bool:
    try:
        from django_redis.cache import RedisCache

        return issubclass(import_string(backend), RedisCache)
    except (ImportError, TypeError):  # not importable, or not a class
        return False


def _check_failover(raw: dict[str, Any], nodes: tuple[Any, ...]) -> list[CheckMessage]:
    try:
        failover = split_spec(raw["FAILOVER_NODES"])
    except NodeSpecError as exc:
        return [_error(E017, HINT_E017, 17, error=str(exc))]
    if not failover:
        return []
    if len(nodes) < 2 or nodes[0].id is None:
        return [_error(E007, HINT_E007, 7)]
    ids = {node.id for node in nodes}
    errors = [_error(E005, HINT_E005, 5, node_id=i) for i in failover if i not in ids]
    if not errors and ids <= set(failover):
        errors.append(_error(E006, HINT_E006, 6))
    return errors


def _check_node_changes(raw: dict[str, Any], nodes: tuple[Node, ...]) -> list[CheckMessage]:
    """DRAINING_NODES name configured nodes, not all regular ones; RETIRED_NODES none of them."""
    lists = {}
    for key in ("DRAINING_NODES", "RETIRED_NODES"):
        try:
            lists[key] = split_spec(raw[key])
        except NodeSpecError as exc:
            return [_error(E027, HINT_E027, 27, key=key, error=str(exc))]
    ids = {node.id for node in nodes}
    draining, retired = lists["DRAINING_NODES"], lists["RETIRED_NODES"]
    errors = [_error(E028, HINT_E028, 28, node_id=i) for i in draining if i not in ids]
    try:
        regular = {n.id for n in nodes if n.id not in split_spec(raw["FAILOVER_NODES"])}
    except NodeSpecError:  # reported as E017
        regular = ids
    if draining and not errors and regular <= set(draining):
        errors.append(_error(E029, HINT_E029, 29))
    errors += [_error(E031, HINT_E031, 31, node_id=i) for i in retired if not NAME_RE.match(i)]
    errors += [_error(E030, HINT_E030, 30, node_id=i) for i in retired if i in ids]
    return errors


def _check_numbers(raw: dict[str, Any]) -> list[CheckMessage]:
    def positive(value: Any, kind: type) -> bool:
        number = isinstance(value, kind) and not isinstance(value, bool)
        return number and math.isfinite(value) and value > 0

    errors = [
        _error(E008, HINT_E008, 8, key=key)
        for key in DURATION_KEYS
        if not positive(raw[key], numbers.Real)
    ]
    errors += [
        _error(E011, HINT_E011, 11, key=key)
        for key in POSITIVE_INT_KEYS
        if not positive(raw[key], int)
    ]
    slots = raw["HOST_VERSION_SLOTS"]
    if slots != 0 and not positive(slots, int):
        errors.append(_error(E011, HINT_E011, 11, key="HOST_VERSION_SLOTS"))
    threads = raw["BACKUP_THREAD_COUNT"]
    if threads is not None and not positive(threads, int):
        errors.append(_error(E011, HINT_E011, 11, key="BACKUP_THREAD_COUNT"))
    wait = raw["LOCK_WAIT_TIMEOUT"]
    if wait is not None and not positive(wait, numbers.Real):
        errors.append(_error(E008, HINT_E008, 8, key="LOCK_WAIT_TIMEOUT"))
    return errors


def _check_locking(raw: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    if raw["LOCK_TIMEOUT_POLICY"] not in ("fail", "proceed"):
        errors.append(_error(E025, HINT_E025, 25))
    value = raw["LOCKING_MODE"]
    mode, sep, pattern = value.partition(":") if isinstance(value, str) else (value, "", "")
    if mode not in ("none", "all", "auto", "uriPattern") or (mode == "uriPattern") != bool(sep):
        return errors + [_error(E023, HINT_E023, 23, value=value)]
    if mode == "uriPattern":
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(_error(E024, HINT_E024, 24, error=exc))
    return errors


_REGEX_KEYS = {
    "REQUEST_URI_IGNORE_PATTERN": (E021, HINT_E021, 21),
    "SESSION_ATTRIBUTE_FILTER": (E026, HINT_E026, 26),
}


def _check_request_scoped(raw: dict[str, Any]) -> list[CheckMessage]:
    errors = [
        _error(E022, HINT_E022, 22, key=key) for key in BOOL_KEYS if not isinstance(raw[key], bool)
    ]
    route = raw["ROUTE"]
    if route is not None and not (isinstance(route, str) and NAME_RE.match(route)):
        errors.append(_error(E020, HINT_E020, 20))
    for key, (msg, hint, number) in _REGEX_KEYS.items():
        if raw[key] is not None:
            try:
                re.compile(raw[key])
            except (re.error, TypeError) as exc:
                errors.append(_error(msg, hint, number, error=exc))
    return errors


def _check_prefix(raw: dict[str, Any]) -> list[CheckMessage]:
    value = raw["STORAGE_KEY_PREFIX"]
    tokens = split_spec(value) if isinstance(value, str) else [repr(value)]
    errors = [
        _error(E009, HINT_E009, 9, token=token)
        for token in tokens
        if not _STATIC_TOKEN.match(token)
    ]
    if errors:
        return errors
    length = len(storage_prefix(value))
    if length > MAX_PREFIX_LENGTH:
        errors.append(_error(E018, HINT_E018, 18, length=length, limit=MAX_PREFIX_LENGTH))
    return errors


def validate() -> list[CheckMessage]:
    """Return every problem of the current DJANGO_MSM setting."""
    user = getattr(settings, "DJANGO_MSM", {})
    if not isinstance(user, dict):
        return [_error(E001, HINT_E001, 1)]
    known = ", ".join(CONFIG_DEFAULTS)
    errors = [
        _error(E002, HINT_E002, 2, key=key, known=known)
        for key in user
        if key not in CONFIG_DEFAULTS
    ]
    raw = raw_settings()
    errors += _check_nodes(raw) + _check_numbers(raw) + _check_prefix(raw)
    return errors + _check_request_scoped(raw) + _check_locking(raw)


@register("django_msm")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report bad DJANGO_MSM values before the first request does."""
    return validate()
