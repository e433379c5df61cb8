"""The SESSION_ENGINE module: ``SESSION_ENGINE = "django_msm.session"``.

``SessionStore`` keeps Django's ``SessionBase`` contract (``CreateError``, ``UpdateError``, lazy
load, async twins) and maps it onto one ``core.engine.SessionEngine`` per instance, as Django's
cache engine maps it onto one cache. Usage::

    store = SessionStore()
    store["cart"] = ["apple"]
    store.save()                 # primary on a random live node, backup on the next one
    store.session_key            # "k3j...9x-n2"
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from .async_twins import WorkerThreadAsyncMixin
from .changes import ChangeTrackingMixin
from .core.engine import SessionEngine
from .exceptions import SessionDeleted, SessionKeyTaken, SessionNotSerializable
from .runtime import get_cluster
from .user_tracking import UserTrackingMixin

logger = logging.getLogger(__name__)


class SessionStore(WorkerThreadAsyncMixin, ChangeTrackingMixin, UserTrackingMixin, SessionBase):
    """Django session store on node-tagged keys with a backup copy per session."""

    _get_session: Callable[..., dict[str, Any]]  # SessionBase's (django-stubs leave it out)

    def __init__(self, session_key: str | None = None):
        self._modified = False
        cluster = get_cluster()
        self._attribute_filter = cluster.config.attribute_filter
        self._engine = SessionEngine(cluster, self._decode)
        self._users = cluster.users  # the per-user index (UserTrackingMixin), None if off
        # Set by django_msm.middleware per request: lock before the first load.
        self.lock_wanted = False
        super().__init__(session_key)

    @property
    def _loaded_payload(self) -> bytes | None:  # type: ignore[override]
        """The bytes loaded or last written (ChangeTrackingMixin compares against them)."""
        return self._engine.loaded_payload

    def _changing(self) -> None:
        """The view changed the session: its save's witness read can leave now. Not from an
        event loop (``aset`` and friends run there): no node I/O on it, the save reads then."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._engine.read_ahead(self._session_key)

    def _serialize(self, data: dict[str, Any]) -> bytes:
        """SESSION_ATTRIBUTE_FILTER: store only matching keys, and Django's own ("_auth_...",
        "_session_expiry"), so a filter cannot log users out. Others live for one request."""
        keep = self._attribute_filter
        if keep is not None:
            data = {k: v for k, v in data.items() if k.startswith("_") or keep.fullmatch(k)}
        return self.serializer().dumps(data)

    def _payload(self, data: dict[str, Any]) -> bytes:
        """The bytes to store, or SessionNotSerializable naming the attribute that fails (a
        serializer's own error names a type, not where it is), before anything is written."""
        try:
            return self._serialize(data)
        except Exception as exc:  # the serializer may raise anything on values it refuses
            culprit = next((name for name in data if not self._encodes(name, data[name])), None)
            raise SessionNotSerializable(culprit, self.serializer.__name__, exc) from exc

    def _encodes(self, name: str, value: Any) -> bool:
        try:
            self._serialize({name: value})
        except Exception:
            return False
        return True

    def _decode(self, payload: bytes) -> dict[str, Any] | None:
        try:
            return self.serializer().loads(payload)
        except Exception:  # the serializer may raise anything on foreign bytes
            logger.warning("a stored session could not be decoded", exc_info=True)
            return None

    def load(self) -> dict[str, Any]:
        outcome = self._engine.load(self._session_key, self.lock_wanted)
        self._session_key = outcome.key  # Django's contract: an unknown key is never reused
        if outcome.resend_cookie:
            self._modified = True
        self._track_loaded(outcome.data, outcome.key)
        return outcome.data

    def release_lock(self) -> None:
        """Release this request's session lock, if it holds one (the middleware calls this)."""
        self._engine.release_lock()

    def exists(self, session_key: str | None) -> bool:
        return self._engine.exists(session_key)

    def create(self) -> None:
        data = self._get_session(no_load=True)
        payload, ahead = self._payload(data), self._track_ahead(data)
        try:
            self._session_key = self._engine.create(payload, self.get_expiry_age())
            self._rewatch()
            self.modified = True
            self._track_written(data, ahead)
        finally:
            self._track_settle(ahead)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        payload, ahead = self._payload(data), self._track_ahead(data)
        try:
            self._session_key = self._engine.save(
                self.session_key,
                payload,
                self.get_expiry_age(),
                must_create=must_create,
                touch=self._modified,
            )
            self._rewatch()
            self._track_written(data, ahead)
        except SessionKeyTaken as exc:
            raise CreateError from exc
        except SessionDeleted as exc:
            raise UpdateError from exc
        finally:
            self._track_settle(ahead)
        return None

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._engine.delete(session_key)
        self._track_deleted(session_key)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: nodes expire copies by their TTL (kept so ``clearsessions`` works)."""
