"""Nodes and the parser of msm's ``memcachedNodes`` forms (DESIGN.md, MEMCACHED_NODES).

Forms, comma or space separated, or given as a list of strings:

* ``n1:host:11211``             memcached node with id ``n1``
* ``host:11211``                a single memcached node without id (keys carry no node id)
* ``n1:redis://host:6379/0``    Redis node (``rediss://`` for TLS)
* ``redis://host:6379``         a single Redis node without id (msm's form)
* ``n1:cache:ALIAS``            a Django ``CACHES`` alias served by django-redis
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..exceptions import ConfigurationError


class NodeKind(enum.Enum):
    MEMCACHED = "memcached"
    REDIS = "redis"
    CACHE = "cache"
    MEMORY = "memory"  # ENABLED=False: process-local, never configured by users


@dataclass(frozen=True)
class Node:
    """One storage node as configured. ``id`` is None only for the single id-less forms."""

    id: str | None
    kind: NodeKind
    address: str
    failover: bool = False

    def __hash__(self) -> int:
        """The address alone (equal nodes share it; a str caches its hash): nodes key the
        registry's dictionaries, looked up a dozen times per request, and the generated hash
        of four fields cost more than the lookups themselves."""
        return hash(self.address)

    @property
    def label(self) -> str:
        """Name the node in logs and errors, also when it has no id (never with a password)."""
        return self.id if self.id is not None else _USERINFO.sub(r"\1***@", self.address)


class NodeSpecError(ConfigurationError):
    """Raised when MEMCACHED_NODES cannot be parsed; the message names the offending part."""


_USERINFO = re.compile(r"^(rediss?://)[^@/]*@")
_ID = r"(?P<id>[A-Za-z0-9_]{1,32})"
_HOST = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
_PORT = r"(?P<port>\d{1,5})"
_FORMS = (
    (NodeKind.MEMCACHED, re.compile(rf"\A{_ID}:{_HOST}:{_PORT}\Z"), True),
    (NodeKind.MEMCACHED, re.compile(rf"\A{_HOST}:{_PORT}\Z"), False),
    (NodeKind.REDIS, re.compile(rf"\A{_ID}:(?P<url>rediss?://\S+)\Z"), True),
    (NodeKind.REDIS, re.compile(r"\A(?P<url>rediss?://\S+)\Z"), False),
    (NodeKind.CACHE, re.compile(rf"\A{_ID}:cache:(?P<alias>[A-Za-z0-9_-]+)\Z"), True),
)


def split_spec(value: object) -> list[str]:
    """Split a node or id list given as one string or as a list of strings."""
    if isinstance(value, str):
        parts: Iterable[object] = [value]
    elif isinstance(value, list | tuple):
        parts = value
    else:
        raise NodeSpecError(f"expected a string or a list of strings, got {type(value).__name__}")
    tokens: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise NodeSpecError(f"expected strings, got {part!r}")
        tokens.extend(token for token in re.split(r"[\s,]+", part) if token)
    return tokens


def _parse_token(token: str) -> Node:
    for kind, pattern, has_id in _FORMS:
        match = pattern.match(token)
        if match is None:
            continue
        groups = match.groupdict()
        if "port" in groups and not 0 < int(groups["port"]) < 65536:
            raise NodeSpecError(f"port out of range in {token!r}")
        address = groups.get("url") or groups.get("alias") or f"{groups['host']}:{groups['port']}"
        return Node(groups["id"] if has_id else None, kind, address)
    raise NodeSpecError(f"cannot parse node {token!r}; expected id:host:port")


def parse_nodes(value: object) -> tuple[Node, ...]:
    """Return the configured nodes in order; raise NodeSpecError naming the bad part."""
    tokens = split_spec(value)
    if not tokens:
        raise NodeSpecError("no nodes configured")
    nodes = tuple(_parse_token(token) for token in tokens)
    if len(nodes) > 1 and any(node.id is None for node in nodes):
        raise NodeSpecError("a node without id is only allowed as the single node")
    return nodes


def duplicate_ids(nodes: Iterable[Node]) -> list[str]:
    """Return the node ids that occur more than once, in order of first repetition."""
    seen: set[str | None] = set()
    dupes: list[str] = []
    for node in nodes:
        if node.id in seen and node.id not in dupes and node.id is not None:
            dupes.append(node.id)
        seen.add(node.id)
    return dupes
