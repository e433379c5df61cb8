"""Session keys and the layout of every key django_msm stores (msm's SessionIdFormat).

A session key is ``<32 chars [a-z0-9]>[-<nodeId>][.<route>]``. Keys are parsed and validated
here, before any I/O, so that a malformed or hostile cookie never reaches a node (msm #279:
unknown node ids were looked up anyway).

``KeyLayout`` is the one place that knows how stored keys are formed from a session key and
``STORAGE_KEY_PREFIX``; every reader and writer (copies, locks, away marks, published
statistics, the inspectors' patterns) asks it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

BASE_LENGTH = 32
BASE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
NAME_PATTERN = r"[A-Za-z0-9_]{1,32}"
NAME_RE = re.compile(rf"\A{NAME_PATTERN}\Z")
# The longest key this format can produce: base, "-", node id, ".", route.
MAX_KEY_LENGTH = BASE_LENGTH + 2 * (1 + 32)
# The session key after the storage prefix: base, then optional node id and route (groups 1, 2).
SESSION_KEY_PATTERN = rf"[a-z0-9]{{{BASE_LENGTH}}}(?:-({NAME_PATTERN}))?(?:\.({NAME_PATTERN}))?"
_KEY_RE = re.compile(
    rf"\A([a-z0-9]{{{BASE_LENGTH}}})(?:-({NAME_PATTERN}))?(?:\.({NAME_PATTERN}))?\Z"
)

BACKUP_PREFIX = "bak:"
LOCK_PREFIX = "lock:"
AWAY_PREFIX = "msm:away:"
STATS_PREFIX = "msm:stats:"


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
    """Return a fresh random key for a session whose primary copy lives on ``node_id``.

    ``secrets.choice`` per character: the same alphabet and entropy as Django's
    ``get_random_string`` (lowercase only: some backends store keys case-insensitively).
    """
    base = "".join(secrets.choice(BASE_CHARS) for _ in range(BASE_LENGTH))
    return SessionId(base, node_id, route)


@dataclass(frozen=True)
class KeyLayout:
    """Every stored key form, for one ``STORAGE_KEY_PREFIX`` (already built, e.g. ``"x_"``).

    * ``<prefix><key>``            the primary copy (or its tombstone)
    * ``bak:<prefix><key>``        the backup copy (or its tombstone; a relocation's names the
                                   new key: the forward)
    * ``lock:<prefix><key>``       the session lock
    * ``msm:away:<prefix><node>``  when a node was last seen away (AwayMarks)
    * ``msm:stats:<prefix><name>`` a process's published statistics
    """

    prefix: str = ""

    def primary(self, sid: SessionId) -> str:
        return f"{self.prefix}{sid}"

    def backup(self, sid: SessionId) -> str:
        return f"{BACKUP_PREFIX}{self.prefix}{sid}"

    def lock(self, sid: SessionId) -> str:
        return f"{LOCK_PREFIX}{self.prefix}{sid}"

    def away(self, node_label: str) -> str:
        return f"{AWAY_PREFIX}{self.prefix}{node_label}"

    def stats(self, name: str) -> str:
        return f"{STATS_PREFIX}{self.prefix}{name}"
