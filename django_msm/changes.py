"""ChangeTracking: Django's ``modified`` flag, plus changes made in place.

``request.session["cart"].append(x)`` sets no flag, so Django's own engines silently drop that
write. A value can only be changed in place after the session handed it out, so the session
notes every mutable value it hands out (``session[k]``, ``get``, ``setdefault`` and their async
twins) with its serialized form at that moment; ``modified`` is also true when one of them now
serializes to other bytes. Comparing bytes is exact (msm compared 32-bit hashes, which can
collide and lose a write). A read that hands out only strings and numbers (the auth keys, say)
serializes nothing at the end of the request; ``items()`` and ``values()`` hand out everything,
and then the whole session is compared with the bytes it was loaded from.

A handed-out value's bytes are its ``pickle`` (protocol 5), not the session serializer's output:
four times cheaper than JSON for a small cart, and at least as discerning. Pickle records every
piece of state JSON records (for the JSON types and the ones ``DjangoJSONEncoder`` adds, and for
the plain objects a custom serializer might handle) and more besides (tuple against list, which
of two equal objects is shared), so a change JSON would see always shows; the reverse can only
cause an extra save of equal content. Values pickle cannot take are compared through the
session serializer, as before. Only ``dumps`` ever runs: nothing is unpickled.

Reading ``modified`` never raises: content the serializer cannot encode (a date appended in
place, which pickle took) counts as modified, so the save that follows raises the one clear
error (``SessionNotSerializable``) instead of the middleware failing on a property read.
"""

from __future__ import annotations

import pickle
from typing import Any

# Values that cannot change in place; anything else handed out is watched.
_IMMUTABLE = (str, int, float, bool, bytes, type(None))
_ABSENT = object()
_EVERYTHING = "*"  # the marker key: items() or values() handed out every value


class ChangeTrackingMixin:
    """For a SessionBase subclass with ``_loaded_payload``, ``_serialize`` and ``serializer``."""

    _modified: bool = False
    _loaded_payload: bytes | None = None
    _handed_out: dict[str, bytes] | None = None  # key -> serialized value when handed out
    _settled: bool | None = None  # the answer, once the view is done (see settle_modified)
    _session: dict[str, Any]
    serializer: Any

    def _serialize(self, data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    @property
    def modified(self) -> bool:
        """True when Django's flag is set *or* a value handed out was changed in place."""
        if self._settled is not None:
            return self._settled
        return self._modified or self._changed_in_place()

    @modified.setter
    def modified(self, value: bool) -> None:
        if value and not self._modified:
            self._changing()
        self._modified = value
        self._settled = None

    def _changing(self) -> None:
        """Django is about to mark the session modified (a hook: a save will follow)."""

    def settle_modified(self) -> bool:
        """Work out ``modified`` once for the response phase: the view is done, so nothing
        changes the content in place any more, and Django's middleware asks again."""
        self._settled = None
        self._settled = self.modified
        return self._settled

    # -- what the session hands out -----------------------------------------------------------
    def _watch(self, key: str, value: Any) -> Any:
        if self._modified or isinstance(value, _IMMUTABLE):
            return value  # saved anyway, or cannot change in place
        watched = self._handed_out
        if watched is None:
            watched = self._handed_out = {}
        if key not in watched and _EVERYTHING not in watched:
            watched[key] = self._fingerprint(key, value)
        return value

    def _fingerprint(self, key: str, value: Any) -> bytes:
        """Bytes that change whenever ``value``'s serialized form would (see the module)."""
        # A value that stops pickling is compared as {key: value} through the serializer:
        # those bytes are never the pickle of the value alone, so the change shows.
        try:
            return pickle.dumps(value, protocol=5)
        except Exception:  # not picklable (pickle raises various types): the serializer decides
            fingerprint: bytes = self.serializer().dumps({key: value})
            return fingerprint

    def _watch_everything(self) -> None:
        self._handed_out = {_EVERYTHING: b""}

    def __getitem__(self, key: str) -> Any:
        return self._watch(key, self._session[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._session.get(key, _ABSENT)
        return default if value is _ABSENT else self._watch(key, value)

    def setdefault(self, key: str, default: Any = None) -> Any:  # MutableMapping's signature
        result = super().setdefault(key, default)  # type: ignore[misc]
        return self._watch(key, result)

    def values(self) -> Any:
        self._watch_everything()
        return self._session.values()

    def items(self) -> Any:
        self._watch_everything()
        return self._session.items()

    async def aget(self, key: str, default: Any = None) -> Any:
        session = await self._aget_session()  # type: ignore[attr-defined]
        value = session.get(key, _ABSENT)
        return default if value is _ABSENT else self._watch(key, value)

    async def asetdefault(self, key: str, value: Any) -> Any:
        result = await super().asetdefault(key, value)  # type: ignore[misc]
        return self._watch(key, result)

    async def avalues(self) -> Any:
        self._watch_everything()
        return (await self._aget_session()).values()  # type: ignore[attr-defined]

    async def aitems(self) -> Any:
        self._watch_everything()
        return (await self._aget_session()).items()  # type: ignore[attr-defined]

    def _rewatch(self) -> None:
        """After a save: what was handed out is compared with what was just written."""
        watched, cache = self._handed_out, getattr(self, "_session_cache", None)
        if not watched or _EVERYTHING in watched or cache is None:
            return
        for key in watched:
            if key in cache:
                watched[key] = self._fingerprint(key, cache[key])

    # -- the comparison -----------------------------------------------------------------------
    def _changed_in_place(self) -> bool:
        watched = self._handed_out
        cache = getattr(self, "_session_cache", None)
        if not watched or cache is None or self._loaded_payload is None:
            return False
        try:
            if _EVERYTHING in watched:
                return self._serialize(cache) != self._loaded_payload
            fingerprint = self._fingerprint
            return any(
                key in cache and fingerprint(key, cache[key]) != before
                for key, before in watched.items()
            )
        except Exception:  # any serializer's refusal: changed into something save() reports
            return True
