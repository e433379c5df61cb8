"""System checks: the one validator of ``DJANGO_MSM``. Ids are never reused.

Every message is a module constant (or built from one) and is tested by exact equality. Every
message about a value shows the value (``shown``, shortened past 60 characters); an unknown key
or node id gets the nearest known one ("Did you mean ...?") and the configured ids.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
import reprlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

from .conf import CONFIG_DEFAULTS, raw_settings, storage_prefix
from .core.keys import MAX_KEY_LENGTH, NAME_RE
from .core.nodes import Node, NodeKind, NodeSpecError, duplicate_ids, parse_nodes, split_spec

E001 = "DJANGO_MSM must be a dict, not {value}."
E002 = "DJANGO_MSM has unknown key {key}."
E003 = "DJANGO_MSM['MEMCACHED_NODES'] = {value} is invalid: {error}."
E004 = "DJANGO_MSM['MEMCACHED_NODES'] repeats node id {node_id!r}."
E005 = "DJANGO_MSM['FAILOVER_NODES'] names unknown node {node_id!r}."
E006 = "DJANGO_MSM['FAILOVER_NODES'] = {value} lists every node."
E007 = "DJANGO_MSM['FAILOVER_NODES'] = {value} needs two or more MEMCACHED_NODES with ids."
E008 = "DJANGO_MSM[{key!r}] must be a positive number of seconds, not {value}."
E009 = "DJANGO_MSM['STORAGE_KEY_PREFIX'] has unsupported token {token!r}."
# E010 ("Redis nodes are not supported yet") is retired: ids are never reused.
E011 = "DJANGO_MSM[{key!r}] must be a positive integer, not {value}."
# E010 and E012 ("... is not supported yet") are retired: ids are never reused.
E013 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} names cache {alias!r}, which is not in CACHES."
E014 = (
    "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] is not a django-redis cache "
    "(BACKEND {backend})."
)
E015 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] has no socket timeout."
E016 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} has an invalid Redis URL {url}: {error}."
E017 = "DJANGO_MSM['FAILOVER_NODES'] = {value} is invalid: {error}."
E018 = (
    "DJANGO_MSM['STORAGE_KEY_PREFIX'] = {value} makes a prefix of {length} characters; "
    "the limit is {limit}."
)
E020 = "DJANGO_MSM['ROUTE'] must be None or letters, digits and '_' (max 32), not {value}."
E021 = "DJANGO_MSM['REQUEST_URI_IGNORE_PATTERN'] = {value} is not a valid regex: {error}."
E022 = "DJANGO_MSM[{key!r}] must be True or False, not {value}."
E023 = "DJANGO_MSM['LOCKING_MODE'] is invalid: {value}."
E024 = "DJANGO_MSM['LOCKING_MODE'] = {value}: the uriPattern is not a valid regex: {error}."
E025 = "DJANGO_MSM['LOCK_TIMEOUT_POLICY'] must be 'fail' or 'proceed', not {value}."
E026 = "DJANGO_MSM['SESSION_ATTRIBUTE_FILTER'] = {value} is not a valid regex: {error}."

HINT_E001 = "Set DJANGO_MSM = {{'MEMCACHED_NODES': 'n1:host1:11211,n2:host2:11211'}}."
HINT_E002 = "{suggestion}Known keys: {known}."
HINT_E003 = "Use 'id:host:port' entries separated by commas, or a single 'host:port'."
HINT_E004 = "Give every node its own id."
HINT_E005 = "{suggestion}Use ids from MEMCACHED_NODES: {known}."
HINT_E006 = "Leave at least one regular node out of FAILOVER_NODES."
HINT_E007 = "Configure two or more nodes as 'id:host:port'."
HINT_E008 = "Use a duration in seconds greater than 0, such as 1.0."
HINT_E009 = "Use 'static:<name>' tokens of letters, digits, '_', '.' and '-'."
HINT_E011 = "Use a whole number greater than 0."
HINT_E013 = (
    "{suggestion}Add CACHES[{alias!r}] with BACKEND 'django_redis.cache.RedisCache' "
    "(CACHES has {known})."
)
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

DURATION_KEYS = (
    "OPERATION_TIMEOUT", "RETRY_TIMEOUT", "LOCK_EXPIRATION", "SESSION_BACKUP_TIMEOUT",
    "HOST_VERSION_TRUST",
)
POSITIVE_INT_KEYS = (
    "MAX_SESSION_SIZE", "COMPRESS_MIN_SIZE", "RETRY_ATTEMPTS", "BACKUP_QUEUE_SIZE",
    "LOCAL_CACHE_ENTRIES", "LOCAL_CACHE_BYTES",
)
BOOL_KEYS = ("STICKY", "SESSION_BACKUP_ASYNC", "ENABLED", "ENABLE_STATISTICS")
# memcached keys stop at 250 bytes: "lock:" or "bak:" + prefix + the longest session key.
MAX_PREFIX_LENGTH = 250 - len("lock:") - MAX_KEY_LENGTH
_STATIC_TOKEN = re.compile(r"\Astatic:[A-Za-z0-9_.-]{1,64}\Z")


_SHOWN = reprlib.Repr()  # keyword arguments need Python 3.12
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: object) -> str:
    """A setting's value as messages show it: its repr, shortened past 60 characters."""
    return _SHOWN.repr(value)


def _did_you_mean(word: object, known: Iterable[str]) -> str:
    """``"Did you mean 'X'? "`` for a near miss of a known name (any case, a typo), else ''."""
    if not isinstance(word, str):
        return ""
    by_upper = {name.upper(): name for name in known}
    close = difflib.get_close_matches(word.upper(), by_upper, n=1, cutoff=0.75)
    return f"Did you mean {by_upper[close[0]]!r}? " if close else ""


def _unknown(word: object, known: Iterable[str]) -> dict[str, str]:
    """The hint's part for an unknown name: the nearest known one, and every known one."""
    known = list(known)
    listed = ", ".join(repr(name) for name in known) or "nothing"
    return {"suggestion": _did_you_mean(word, known), "known": listed}


def _error(msg: str, hint: str, number: int, **fmt: Any) -> Error:
    return Error(msg.format(**fmt), hint=hint.format(**fmt), id=f"django_msm.E{number:03d}")


def _check_nodes(raw: dict[str, Any]) -> list[CheckMessage]:
    try:
        nodes = parse_nodes(raw["MEMCACHED_NODES"])
    except NodeSpecError as exc:
        return [_error(E003, HINT_E003, 3, value=shown(raw["MEMCACHED_NODES"]), error=str(exc))]
    errors = [_error(E004, HINT_E004, 4, node_id=dup) for dup in duplicate_ids(nodes)]
    errors += [error for node in nodes for error in _check_redis_node(node)]
    return errors + _check_failover(raw, nodes)


def _check_redis_node(node: Node) -> list[CheckMessage]:
    """A Redis URL must parse; a cache alias must name a django-redis cache with a timeout."""
    if node.kind is NodeKind.REDIS:
        from redis.connection import parse_url

        try:
            parse_url(node.address)
        except ValueError as exc:
            url = shown(node.address)
            return [_error(E016, HINT_E016, 16, node=node.label, url=url, error=exc)]
        return []
    if node.kind is not NodeKind.CACHE:
        return []
    alias = node.address
    entry = settings.CACHES.get(alias)
    if entry is None:
        hint = _unknown(alias, settings.CACHES)
        return [_error(E013, HINT_E013, 13, node=node.label, alias=alias, **hint)]
    backend = entry.get("BACKEND", "")
    if not _is_django_redis(backend):
        return [_error(E014, HINT_E014, 14, node=node.label, alias=alias, backend=shown(backend))]
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
    value = shown(raw["FAILOVER_NODES"])
    try:
        failover = split_spec(raw["FAILOVER_NODES"])
    except NodeSpecError as exc:
        return [_error(E017, HINT_E017, 17, value=value, error=str(exc))]
    if not failover:
        return []
    if len(nodes) < 2 or nodes[0].id is None:
        return [_error(E007, HINT_E007, 7, value=value)]
    ids = [node.id for node in nodes if node.id is not None]
    errors = [
        _error(E005, HINT_E005, 5, node_id=i, **_unknown(i, ids))
        for i in failover
        if i not in ids
    ]
    if not errors and set(ids) <= set(failover):
        errors.append(_error(E006, HINT_E006, 6, value=value))
    return errors


def _check_numbers(raw: dict[str, Any]) -> list[CheckMessage]:
    def positive(value: Any, kind: type) -> bool:
        number = isinstance(value, kind) and not isinstance(value, bool)
        return number and math.isfinite(value) and value > 0

    def bad(key: str, number: int) -> Error:
        msg, hint = (E008, HINT_E008) if number == 8 else (E011, HINT_E011)
        return _error(msg, hint, number, key=key, value=shown(raw[key]))

    errors = [bad(key, 8) for key in DURATION_KEYS if not positive(raw[key], numbers.Real)]
    errors += [bad(key, 11) for key in POSITIVE_INT_KEYS if not positive(raw[key], int)]
    slots = raw["HOST_VERSION_SLOTS"]
    if slots != 0 and not positive(slots, int):
        errors.append(bad("HOST_VERSION_SLOTS", 11))
    threads = raw["BACKUP_THREAD_COUNT"]
    if threads is not None and not positive(threads, int):
        errors.append(bad("BACKUP_THREAD_COUNT", 11))
    wait = raw["LOCK_WAIT_TIMEOUT"]
    if wait is not None and not positive(wait, numbers.Real):
        errors.append(bad("LOCK_WAIT_TIMEOUT", 8))
    return errors


def _check_locking(raw: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    if raw["LOCK_TIMEOUT_POLICY"] not in ("fail", "proceed"):
        errors.append(_error(E025, HINT_E025, 25, value=shown(raw["LOCK_TIMEOUT_POLICY"])))
    value = raw["LOCKING_MODE"]
    mode, sep, pattern = value.partition(":") if isinstance(value, str) else (value, "", "")
    if mode not in ("none", "all", "auto", "uriPattern") or (mode == "uriPattern") != bool(sep):
        return errors + [_error(E023, HINT_E023, 23, value=shown(value))]
    if mode == "uriPattern":
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(_error(E024, HINT_E024, 24, value=shown(value), error=exc))
    return errors


_REGEX_KEYS = {
    "REQUEST_URI_IGNORE_PATTERN": (E021, HINT_E021, 21),
    "SESSION_ATTRIBUTE_FILTER": (E026, HINT_E026, 26),
}


def _check_request_scoped(raw: dict[str, Any]) -> list[CheckMessage]:
    errors = [
        _error(E022, HINT_E022, 22, key=key, value=shown(raw[key]))
        for key in BOOL_KEYS
        if not isinstance(raw[key], bool)
    ]
    route = raw["ROUTE"]
    if route is not None and not (isinstance(route, str) and NAME_RE.match(route)):
        errors.append(_error(E020, HINT_E020, 20, value=shown(route)))
    for key, (msg, hint, number) in _REGEX_KEYS.items():
        if raw[key] is not None:
            try:
                re.compile(raw[key])
            except (re.error, TypeError) as exc:
                errors.append(_error(msg, hint, number, value=shown(raw[key]), error=exc))
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
        fmt = {"value": shown(value), "length": length, "limit": MAX_PREFIX_LENGTH}
        errors.append(_error(E018, HINT_E018, 18, **fmt))
    return errors


def validate() -> list[CheckMessage]:
    """Return every problem of the current DJANGO_MSM setting."""
    user = getattr(settings, "DJANGO_MSM", {})
    if not isinstance(user, dict):
        return [_error(E001, HINT_E001, 1, value=shown(user))]
    known = ", ".join(CONFIG_DEFAULTS)
    errors = [
        _error(E002, HINT_E002, 2, key=shown(key), known=known,
               suggestion=_did_you_mean(key, CONFIG_DEFAULTS))
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
