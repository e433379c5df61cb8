"""What reading and writing a session's copies can come to (``core.copies`` answers these)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .envelope import Copy


class UpdateResult(enum.Enum):
    STORED = "stored"
    DELETED = "deleted"  # gone everywhere: Django's UpdateError
    LOST = "lost"  # the primary lost it but a backup exists: relocate


@dataclass(frozen=True)
class Loaded:
    """What a load found. ``copy`` is None for a miss."""

    copy: Copy | None = None
    from_backup: bool = False
    relocate: bool = False
    unreachable: bool = False
    token: bytes | None = None  # version token of the primary copy: fences this request's save
    moved_to: str | None = None  # the key was retired by a relocation: where the session went


@dataclass(frozen=True)
class Outcome:
    """What a load gives the session store: the data, the key to keep, and whether this
    response must carry the key (a move or a followed forward)."""

    data: dict[str, Any]
    key: str | None
    resend_cookie: bool = False
