"""ChangeTracking: Django's ``modified`` flag, plus changes made in place.

``request.session["cart"].append(x)`` sets no flag, so Django's own engines silently drop that
write. The session remembers a digest of the payload it loaded or wrote; ``modified`` is also
true when the current content serializes to something else.
"""

from __future__ import annotations

import hashlib
from typing import Any


def digest(payload: bytes) -> bytes:
    """A strong 128-bit digest (msm's 32-bit hash could collide and lose a write)."""
    return hashlib.blake2b(payload, digest_size=16).digest()


class ChangeTrackingMixin:
    """For a SessionBase subclass that sets ``_loaded_digest`` and defines ``_serialize``."""

    _modified: bool = False
    _loaded_digest: bytes | None = None

    def _serialize(self, data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    @property
    def modified(self) -> bool:
        """True when Django's flag is set *or* the loaded content changed in place."""
        return self._modified or self._changed_in_place()

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    def _changed_in_place(self) -> bool:
        cache = getattr(self, "_session_cache", None)
        if cache is None or self._loaded_digest is None:
            return False
        return digest(self._serialize(cache)) != self._loaded_digest
