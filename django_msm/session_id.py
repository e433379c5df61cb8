"""SessionIdFormat: session keys that carry the id of the node holding the primary copy.

A key is ``<32 chars [a-z0-9]>[-<nodeId>][.<route>]``. Keys are parsed and validated here, before
any I/O, so that a malformed or hostile cookie never reaches a node (msm #279: unknown node ids
were looked up anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.crypto import get_random_string

BASE_LENGTH = 32
BASE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
NAME_PATTERN = r"[A-Za-z0-9_]{1,32}"
NAME_RE = re.compile(rf"\A{NAME_PATTERN}\Z")
# The longest key this format can produce: base, "-", node id, ".", route.
MAX_KEY_LENGTH = BASE_LENGTH + 2 * (1 + 32)
_KEY_RE = re.compile(
    rf"\A([a-z0-9]{{{BASE_LENGTH}}})(?:-({NAME_PATTERN}))?(?:\.({NAME_PATTERN}))?\Z"
)


@dataclass(frozen=True)
class SessionId:
    """A parsed session key."""

    base: str
    node_id: str | None
    route: str | None

    def __str__(self) -> str:
        text = self.base
        if self.node_id is not None:
            text += f"-{self.node_id}"
        if self.route is not None:
            text += f".{self.route}"
        return text


def parse(key: object) -> SessionId | None:
    """Return the parsed key, or None for anything that is not a well-formed key."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        return None
    match = _KEY_RE.match(key)
    if match is None:
        return None
    return SessionId(*match.groups())


def new_id(node_id: str | None, route: str | None = None) -> SessionId:
    """Return a fresh random key for a session whose primary copy lives on ``node_id``."""
    return SessionId(get_random_string(BASE_LENGTH, BASE_CHARS), node_id, route)
