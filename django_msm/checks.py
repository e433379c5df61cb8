"""System checks: the one validator of ``DJANGO_MSM``. Ids are never reused.

Every message is a module constant (or built from one) and is tested by exact equality. Every
message about a value shows the value (``shown``, shortened past 60 characters); an unknown key
or node id gets the nearest known one ("Did you mean ...?") and the configured ids. Errors
(E0xx) stop the engine (``runtime.get_config``); warnings (W0xx) name a setting that works but
will hurt, and come after the errors. Errors and warnings share one sequence of numbers.
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
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from . import check_messages as text
from .conf import CONFIG_DEFAULTS, raw_settings, storage_prefix
from .core.keys import MAX_KEY_LENGTH, NAME_RE
from .core.nodes import Node, NodeKind, NodeSpecError, duplicate_ids, parse_nodes, split_spec

DURATION_KEYS = (
    "OPERATION_TIMEOUT", "RETRY_TIMEOUT", "LOCK_EXPIRATION", "SESSION_BACKUP_TIMEOUT",
    "HOST_VERSION_TRUST", "USER_SESSIONS_TOUCH_INTERVAL",
)
POSITIVE_INT_KEYS = (
    "MAX_SESSION_SIZE", "COMPRESS_MIN_SIZE", "RETRY_ATTEMPTS", "BACKUP_QUEUE_SIZE",
    "LOCAL_CACHE_ENTRIES", "LOCAL_CACHE_BYTES", "USER_SESSIONS_MAX", "REPAIR_RATE",
)
BOOL_KEYS = (
    "STICKY", "SESSION_BACKUP_ASYNC", "ENABLED", "ENABLE_STATISTICS", "USER_SESSIONS",
    "USER_SESSIONS_RECORD_IP", "USER_SESSIONS_RECORD_USER_AGENT",
    "END_SESSIONS_ON_PASSWORD_CHANGE", "AUTO_REPAIR",
)
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


def _error(msg: str, hint: str, number: int, **fmt: Any) -> CheckMessage:
    return Error(msg.format(**fmt), hint=hint.format(**fmt), id=f"django_msm.E{number:03d}")


def _warning(msg: str, hint: str, number: int, **fmt: Any) -> Warning:
    return Warning(msg.format(**fmt), hint=hint, id=f"django_msm.W{number:03d}")


def _check_nodes(raw: dict[str, Any]) -> list[CheckMessage]:
    try:
        nodes = parse_nodes(raw["MEMCACHED_NODES"])
    except NodeSpecError as exc:
        value = shown(raw["MEMCACHED_NODES"])
        return [_error(text.E003, text.HINT_E003, 3, value=value, error=str(exc))]
    errors = [_error(text.E004, text.HINT_E004, 4, node_id=dup) for dup in duplicate_ids(nodes)]
    errors += [error for node in nodes for error in _check_redis_node(node)]
    return errors + _check_failover(raw, nodes) + _check_node_changes(raw, nodes)


def _check_redis_node(node: Node) -> list[CheckMessage]:
    """A Redis URL must parse; a cache alias must name a django-redis cache with a timeout."""
    if node.kind is NodeKind.REDIS:
        from redis.connection import parse_url

        try:
            parse_url(node.address)
        except ValueError as exc:
            url = shown(node.address)
            return [_error(text.E016, text.HINT_E016, 16, node=node.label, url=url, error=exc)]
        return []
    if node.kind is not NodeKind.CACHE:
        return []
    alias = node.address
    entry = settings.CACHES.get(alias)
    if entry is None:
        hint = _unknown(alias, settings.CACHES)
        return [_error(text.E013, text.HINT_E013, 13, node=node.label, alias=alias, **hint)]
    backend = entry.get("BACKEND", "")
    if not _is_django_redis(backend):
        found = shown(backend)
        return [_error(text.E014, text.HINT_E014, 14, node=node.label, alias=alias, backend=found)]
    options = entry.get("OPTIONS", {})
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS", {})
    if not (options.get("SOCKET_TIMEOUT") or pool_kwargs.get("socket_timeout")):
        return [_error(text.E015, text.HINT_E015, 15, node=node.label, alias=alias)]
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
        return [_error(text.E017, text.HINT_E017, 17, value=value, error=str(exc))]
    if not failover:
        return []
    if len(nodes) < 2 or nodes[0].id is None:
        return [_error(text.E007, text.HINT_E007, 7, value=value)]
    ids = [node.id for node in nodes if node.id is not None]
    errors = [
        _error(text.E005, text.HINT_E005, 5, node_id=i, **_unknown(i, ids))
        for i in failover
        if i not in ids
    ]
    if not errors and set(ids) <= set(failover):
        errors.append(_error(text.E006, text.HINT_E006, 6, value=value))
    return errors


def _check_node_changes(raw: dict[str, Any], nodes: tuple[Node, ...]) -> list[CheckMessage]:
    """DRAINING_NODES name configured nodes, not all regular ones; RETIRED_NODES none of them."""
    lists = {}
    for key in ("DRAINING_NODES", "RETIRED_NODES"):
        try:
            lists[key] = split_spec(raw[key])
        except NodeSpecError as exc:
            value = shown(raw[key])
            return [_error(text.E030, text.HINT_E030, 30, key=key, value=value, error=str(exc))]
    ids = [node.id for node in nodes if node.id is not None]
    draining, retired = lists["DRAINING_NODES"], lists["RETIRED_NODES"]
    errors: list[CheckMessage] = [
        _error(text.E031, text.HINT_E031, 31, node_id=i, **_unknown(i, ids))
        for i in draining
        if i not in ids
    ]
    try:
        regular = {i for i in ids if i not in split_spec(raw["FAILOVER_NODES"])}
    except NodeSpecError:  # reported as E017
        regular = set(ids)
    if draining and not errors and regular <= set(draining):
        errors.append(_error(text.E032, text.HINT_E032, 32, value=shown(raw["DRAINING_NODES"])))
    errors += [
        _error(text.E034, text.HINT_E034, 34, node_id=i) for i in retired if not NAME_RE.match(i)
    ]
    errors += [_error(text.E033, text.HINT_E033, 33, node_id=i) for i in retired if i in ids]
    return errors


def _positive(value: Any, kind: type) -> bool:
    number = isinstance(value, kind) and not isinstance(value, bool)
    return number and math.isfinite(value) and value > 0


def _is_duration(value: Any) -> bool:
    return _positive(value, numbers.Real)


def _check_numbers(raw: dict[str, Any]) -> list[CheckMessage]:
    def bad(key: str, number: int) -> CheckMessage:
        msg, hint = (text.E008, text.HINT_E008) if number == 8 else (text.E011, text.HINT_E011)
        return _error(msg, hint, number, key=key, value=shown(raw[key]))

    errors = [bad(key, 8) for key in DURATION_KEYS if not _is_duration(raw[key])]
    errors += [bad(key, 11) for key in POSITIVE_INT_KEYS if not _positive(raw[key], int)]
    slots = raw["HOST_VERSION_SLOTS"]
    if slots != 0 and not _positive(slots, int):
        errors.append(bad("HOST_VERSION_SLOTS", 11))
    threads = raw["BACKUP_THREAD_COUNT"]
    if threads is not None and not _positive(threads, int):
        errors.append(bad("BACKUP_THREAD_COUNT", 11))
    wait = raw["LOCK_WAIT_TIMEOUT"]
    if wait is not None and not _is_duration(wait):
        errors.append(bad("LOCK_WAIT_TIMEOUT", 8))
    return errors


def _check_locking(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    policy = raw["LOCK_TIMEOUT_POLICY"]
    if policy not in ("fail", "proceed"):
        errors.append(_error(text.E025, text.HINT_E025, 25, value=shown(policy)))
    value = raw["LOCKING_MODE"]
    mode, sep, pattern = value.partition(":") if isinstance(value, str) else (value, "", "")
    if mode not in ("none", "all", "auto", "uriPattern") or (mode == "uriPattern") != bool(sep):
        return errors + [_error(text.E023, text.HINT_E023, 23, value=shown(value))]
    if mode == "uriPattern":
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(_error(text.E024, text.HINT_E024, 24, value=shown(value), error=exc))
    return errors


_REGEX_KEYS = {
    "REQUEST_URI_IGNORE_PATTERN": (text.E021, text.HINT_E021, 21),
    "SESSION_ATTRIBUTE_FILTER": (text.E026, text.HINT_E026, 26),
}


def _check_request_scoped(raw: dict[str, Any]) -> list[CheckMessage]:
    errors = [
        _error(text.E022, text.HINT_E022, 22, key=key, value=shown(raw[key]))
        for key in BOOL_KEYS
        if not isinstance(raw[key], bool)
    ]
    if raw["END_SESSIONS_ON_PASSWORD_CHANGE"] is True and raw["USER_SESSIONS"] is False:
        errors.append(_error(text.E029, text.HINT_E029, 29))
    route = raw["ROUTE"]
    if route is not None and not (isinstance(route, str) and NAME_RE.match(route)):
        errors.append(_error(text.E020, text.HINT_E020, 20, value=shown(route)))
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
        _error(text.E009, text.HINT_E009, 9, token=token)
        for token in tokens
        if not _STATIC_TOKEN.match(token)
    ]
    if errors:
        return errors
    length = len(storage_prefix(value))
    if length > MAX_PREFIX_LENGTH:
        fmt = {"value": shown(value), "length": length, "limit": MAX_PREFIX_LENGTH}
        errors.append(_error(text.E018, text.HINT_E018, 18, **fmt))
    return errors


def validate() -> list[CheckMessage]:
    """Return every problem of the current DJANGO_MSM setting."""
    user = getattr(settings, "DJANGO_MSM", {})
    if not isinstance(user, dict):
        return [_error(text.E001, text.HINT_E001, 1, value=shown(user))]
    known = ", ".join(CONFIG_DEFAULTS)
    errors = [
        _error(text.E002, text.HINT_E002, 2, key=shown(key), known=known,
               suggestion=_did_you_mean(key, CONFIG_DEFAULTS))
        for key in user
        if key not in CONFIG_DEFAULTS
    ]
    raw = raw_settings()
    node_errors = _check_nodes(raw)
    errors += node_errors + _check_numbers(raw) + _check_prefix(raw)
    errors += _check_request_scoped(raw) + _check_locking(raw)
    return errors + _warnings(raw, nodes_valid=not node_errors)


def _warnings(raw: dict[str, Any], nodes_valid: bool) -> list[CheckMessage]:
    """Settings that work but will hurt: short lock waits (issue 12: 503s under load), a single
    node (no backup copy: a failure or a Sentinel failover loses or drops sessions)."""
    found: list[CheckMessage] = []
    wait, expiration = raw["LOCK_WAIT_TIMEOUT"], raw["LOCK_EXPIRATION"]
    if _is_duration(wait) and _is_duration(expiration) and wait < expiration:
        found.append(_warning(text.W027, text.HINT_W027, 27, wait=wait, expiration=expiration))
    # Failover nodes count: the backup walk wraps through them, so they hold backup copies.
    if nodes_valid and raw["ENABLED"] is True and len(parse_nodes(raw["MEMCACHED_NODES"])) < 2:
        found.append(_warning(text.W028, text.HINT_W028, 28))
    return found


@register("django_msm")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report bad DJANGO_MSM values before the first request does."""
    return validate()
