"""The SESSION_ENGINE module: ``SESSION_ENGINE = "django_msm.session"``.

``SessionStore`` keeps Django's ``SessionBase`` contract (``CreateError``, ``UpdateError``, lazy
load, async twins from the base class) and delegates copies and failover to
``BackupSessionService``. Usage::

    store = SessionStore()
    store["cart"] = ["apple"]
    store.save()                 # primary on a random live node, backup on the next one
    store.session_key            # "k3j...9x-n2"
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from . import session_id
from .backup import BackupSessionService, UpdateResult
from .envelope import Copy
from .exceptions import NodeUnavailable
from .nodes import Node
from .registry import get_registry
from .session_id import SessionId
from .signals import session_relocated
from .stats import statistics

logger = logging.getLogger(__name__)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


class SessionStore(SessionBase):
    """Django session store on node-tagged memcached keys with a backup copy per session."""

    def __init__(self, session_key: str | None = None):
        self._modified = False
        self._copy: Copy | None = None  # what was loaded or last written: revision, expiry
        self._loaded_digest: bytes | None = None
        self._from_backup = False
        self._unreachable = False
        super().__init__(session_key)

    # -- change detection -----------------------------------------------------------------
    @property
    def modified(self) -> bool:  # type: ignore[override]
        """True when Django's flag is set *or* the loaded content changed in place.

        ``request.session["cart"].append(x)`` sets no flag; comparing a hash of what was
        loaded keeps that write from being lost (it is with Django's own engines).
        """
        return self._modified or self._changed_in_place()

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    def _changed_in_place(self) -> bool:
        cache = getattr(self, "_session_cache", None)
        if cache is None or self._loaded_digest is None:
            return False
        return _digest(self._serialize(cache)) != self._loaded_digest

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _service(self) -> BackupSessionService:
        return BackupSessionService(get_registry())

    def _locate(self, key: str | None) -> tuple[SessionId, Node] | None:
        """Parse a key and find its node; None for anything that must not reach a node."""
        sid = session_id.parse(key)
        if sid is None:
            return None
        node = get_registry().node_for(sid)
        return None if node is None else (sid, node)

    def _serialize(self, data: dict[str, Any]) -> bytes:
        return self.serializer().dumps(data)

    def _remember(self, copy: Copy) -> None:
        self._copy = copy
        self._loaded_digest = _digest(copy.payload)
        self._from_backup = False
        self._unreachable = False

    # -- SessionBase contract ------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        located = self._locate(self._session_key)
        with statistics.timer("load"):
            loaded = self._service.load(*located) if located is not None else None
        if loaded is not None and loaded.unreachable:
            logger.warning("no copy of session %s reachable; serving it empty", located[0])
            self._unreachable = True
            return {}
        data = self._decode_copy(loaded.copy) if loaded is not None else None
        if data is None:
            self._session_key = None  # a miss: Django's contract, the key is not reused
            return {}
        self._remember(loaded.copy)
        self._from_backup = loaded.from_backup
        if loaded.relocate:
            self._modified = True  # the response must carry the new key
        return data

    def _decode_copy(self, copy: Copy | None) -> dict[str, Any] | None:
        if copy is None:
            return None
        try:
            return self.serializer().loads(copy.payload)
        except Exception:  # the serializer may raise anything on foreign bytes
            logger.warning("session %s could not be decoded", self._session_key, exc_info=True)
            return None

    def exists(self, session_key: str | None) -> bool:
        located = self._locate(session_key)
        return located is not None and self._service.load(*located).copy is not None

    def create(self) -> None:
        data = self._get_session(no_load=True)
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(self._serialize(data), ttl, revision=1)
        sid = self._service.create(copy, ttl, None)
        self._session_key = str(sid)
        self._remember(copy)
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        if self._unreachable:
            logger.warning("session %s not saved: its copies were unreachable", self.session_key)
            return None
        payload = self._serialize(data)
        if must_create:
            return self._save_new(payload)
        if self._copy is None or self._from_backup or _digest(payload) != self._loaded_digest:
            return self._save_changed(payload)
        if self._modified or self._refresh_due(self._copy):
            # Unchanged content: refresh the expiry with a touch, which also tells whether the
            # session was deleted meanwhile (Django's UpdateError contract).
            return self._touch(payload)
        statistics.incr("saves_skipped_unchanged")
        return None

    def _save_new(self, payload: bytes) -> None:
        located = self._locate(self.session_key)
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(payload, ttl, revision=1)
        if located is None:
            sid = self._service.create(copy, ttl, None)
            self._session_key = str(sid)
        elif not self._service.add(*located, copy, ttl):
            raise CreateError
        self._remember(copy)

    def _save_changed(self, payload: bytes) -> None:
        located = self._locate(self.session_key)
        if located is None or self._copy is None:
            raise UpdateError
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(payload, ttl, self._copy.revision + 1)
        if self._from_backup:
            return self._relocate(located, copy, ttl)
        try:
            result = self._service.update(*located, copy, ttl)
        except NodeUnavailable:
            result = UpdateResult.LOST
        self._settle(result, located, copy, ttl)

    def _touch(self, payload: bytes) -> None:
        located = self._locate(self.session_key)
        assert located is not None and self._copy is not None
        ttl = self.get_expiry_age()
        try:
            result = self._service.touch(*located, self._copy, ttl)
        except NodeUnavailable:
            return  # both copies hold this content; a slow node is no reason to move it
        copy = self._service.new_copy(payload, ttl, self._copy.revision + 1)
        self._settle(result, located, copy if result is UpdateResult.LOST else self._copy, ttl)

    def _settle(
        self, result: UpdateResult, located: tuple[SessionId, Node], copy: Copy, ttl: int
    ) -> None:
        if result is UpdateResult.DELETED:
            raise UpdateError
        if result is UpdateResult.LOST:
            return self._relocate(located, copy, ttl)
        self._remember(copy)
        return None

    def _relocate(self, located: tuple[SessionId, Node], copy: Copy, ttl: int) -> None:
        """Move a session whose primary lost it, or cannot be trusted, to a new key."""
        old_sid, old_node = located
        new_sid = self._service.create(copy, ttl, old_sid.route)
        self._service.delete(old_sid, old_node, ttl, copy.revision)
        logger.info("session %s relocated to %s", old_sid, new_sid)
        statistics.incr("relocations")
        self._session_key = str(new_sid)
        self._remember(copy)
        session_relocated.send(sender=type(self), old_key=str(old_sid), new_key=str(new_sid))

    def _refresh_due(self, copy: Copy) -> bool:
        """True when less than half of the stored lifetime is left (SAVE_EVERY_REQUEST)."""
        remaining = copy.expires_at - self._service.clock.time()
        return remaining < self.get_expiry_age() / 2

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        located = self._locate(session_key)
        if located is None:
            return
        revision = self._copy.revision if self._copy is not None else 0
        self._service.delete(*located, settings.SESSION_COOKIE_AGE, revision)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: nodes expire copies by their TTL (kept so ``clearsessions`` works)."""
