"""ChangeTracking: Django's ``modified`` flag, plus changes made in place.

``request.session["cart"].append(x)`` sets no flag, so Django's own engines silently drop that
write. The session keeps the serialized payload it loaded or wrote (it holds it anyway, in its
copy); ``modified`` is also true when the current content serializes to other bytes. Comparing
bytes is exact (msm compared 32-bit hashes, which can collide and lose a write) and cheaper
than hashing.

Reading ``modified`` never raises: content the serializer cannot encode (a date appended in
place, which pickle took) counts as modified, so the save that follows raises the one clear
error (``SessionNotSerializable``) instead of the middleware failing on a property read.
"""

from __future__ import annotations

from typing import Any


class ChangeTrackingMixin:
    """For a SessionBase subclass that sets ``_loaded_payload`` and defines ``_serialize``."""

    _modified: bool = False
    _loaded_payload: bytes | None = None

    def _serialize(self, data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    _settled: bool | None = None  # the answer, once the view is done (see settle_modified)

    @property
    def modified(self) -> bool:
        """True when Django's flag is set *or* the loaded content changed in place."""
        if self._settled is not None:
            return self._settled
        return self._modified or self._changed_in_place()

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value
        self._settled = None

    def settle_modified(self) -> bool:
        """Work out ``modified`` once for the response phase: the view is done, so nothing
        changes the content in place any more, and Django's middleware asks again."""
        self._settled = None
        self._settled = self.modified
        return self._settled

    def _changed_in_place(self) -> bool:
        cache = getattr(self, "_session_cache", None)
        if cache is None or self._loaded_payload is None:
            return False
        try:
            return self._serialize(cache) != self._loaded_payload
        except Exception:  # any serializer's refusal: changed into something save() reports
            return True
