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

import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from . import session_id
from .async_twins import WorkerThreadAsyncMixin
from .backup import BackupSessionService, Loaded, UpdateResult
from .changes import ChangeTrackingMixin
from .envelope import Copy
from .exceptions import NodeUnavailable
from .locking import SessionLock, SessionLocker
from .nodes import Node
from .registry import NodeRegistry, get_registry
from .session_id import SessionId
from .signals import session_relocated, session_taken_over
from .stats import statistics

logger = logging.getLogger(__name__)
Located = tuple[SessionId, Node]
MAX_FORWARDS = 2  # a relocated session may be relocated again while a request is in flight


class SessionStore(WorkerThreadAsyncMixin, ChangeTrackingMixin, SessionBase):
    """Django session store on node-tagged memcached keys with a backup copy per session."""

    def __init__(self, session_key: str | None = None):
        self._modified = False
        self._copy: Copy | None = None  # what was loaded or last written: revision, expiry
        self._loaded_payload: bytes | None = None
        self._move: str | None = None  # why the session must move to a new key at save
        self._unreachable = False
        self._lock: SessionLock | None = None
        self._hops = 0  # forwards followed by this load (relocated keys)
        # Set by django_msm.middleware per request: lock before the first load.
        self.lock_wanted = False
        super().__init__(session_key)

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _registry(self) -> NodeRegistry:
        return get_registry()

    @property
    def _service(self) -> BackupSessionService:
        return BackupSessionService(get_registry())

    def _locate(self, key: str | None) -> Located | None:
        """Parse a key and find its node; None for anything that must not reach a node."""
        sid = session_id.parse(key)
        if sid is None:
            return None
        node = self._registry.node_for(sid)
        return None if node is None else (sid, node)

    def _serialize(self, data: dict[str, Any]) -> bytes:
        """SESSION_ATTRIBUTE_FILTER: store only matching keys, and Django's own ("_auth_...",
        "_session_expiry"), so a filter cannot log users out. Others live for one request."""
        keep = self._registry.config.attribute_filter
        if keep is not None:
            data = {k: v for k, v in data.items() if k.startswith("_") or keep.fullmatch(k)}
        return self.serializer().dumps(data)

    def _decode(self, copy: Copy | None) -> dict[str, Any] | None:
        if copy is None:
            return None
        try:
            return self.serializer().loads(copy.payload)
        except Exception:  # the serializer may raise anything on foreign bytes
            logger.warning("session %s could not be decoded", self._session_key, exc_info=True)
            return None

    def _remember(self, sid: SessionId, copy: Copy, token: bytes | None, local: bool) -> None:
        """Note the current copy; in sticky mode also keep it as the process-local primary."""
        self._copy = copy
        self._loaded_payload = copy.payload
        self._move = None
        self._unreachable = False
        sticky = self._registry.sticky
        if local and sticky is not None:
            sticky.remember(str(sid), copy, token)

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        located = self._locate(self._session_key)
        if located is None:
            return self._miss()
        if self.lock_wanted and self._lock is None:
            self._acquire_lock(*located)
        data = self._load_local(*located)
        if data is not None:
            return data
        with statistics.timer("load"):
            loaded = self._service.load(*located)
        if loaded.moved_to is not None and self._hops < MAX_FORWARDS:
            return self._follow(loaded.moved_to)
        if loaded.unreachable:
            logger.warning("no copy of session %s reachable; serving it empty", located[0])
            self._unreachable = True
            return {}
        data = self._decode(loaded.copy)
        if data is None or loaded.copy is None:
            return self._miss()
        self._remember(located[0], loaded.copy, loaded.token, local=not loaded.from_backup)
        self._plan_move(*located, loaded)
        return data

    def _acquire_lock(self, sid: SessionId, node: Node) -> None:
        self._lock = SessionLocker(self._registry).acquire_or_raise(sid, node)

    def release_lock(self) -> None:
        """Release this request's session lock, if it holds one (the middleware calls this)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            SessionLocker(self._registry).release(lock)

    def _follow(self, key: str) -> dict[str, Any]:
        """Another request relocated this session: load it under its new key, and let this
        response carry that key too (a late reply must not undo the move)."""
        self._hops += 1
        statistics.incr("forwards_followed")
        self.release_lock()  # the old key's; the new key is locked by the load below
        self._session_key = key
        data = self.load()
        if self._session_key is not None:
            self._modified = True
        return data

    def _miss(self) -> dict[str, Any]:
        self._session_key = None  # Django's contract: an unknown key is never reused
        return {}

    def _load_local(self, sid: SessionId, node: Node) -> dict[str, Any] | None:
        """Sticky mode: serve the local copy if it is the current version."""
        sticky = self._registry.sticky
        if sticky is None:
            return None
        entry = sticky.current(str(sid), lambda: self._service.version(sid, node))
        data = self._decode(entry.copy) if entry is not None else None
        if entry is not None and data is not None:
            statistics.incr("loads_local")
            self._remember(sid, entry.copy, entry.token, local=False)
            self._plan_move(sid, node, Loaded(entry.copy))
        return data

    def _plan_move(self, sid: SessionId, node: Node, loaded: Loaded) -> None:
        """Decide whether this session moves to a new key, and re-send the cookie if so."""
        route = self._registry.config.route
        if route is not None and sid.route != route:
            self._move = "takeover"
        elif loaded.from_backup:
            self._move = "backup"
        elif node.failover and self._registry.regular_available():
            self._move = "failover"
        if self._move is not None and (loaded.relocate or self._move != "backup"):
            self._modified = True  # the response must carry the new key

    def exists(self, session_key: str | None) -> bool:
        located = self._locate(session_key)
        return located is not None and self._service.load(*located).copy is not None

    # -- writing ------------------------------------------------------------------------------
    def create(self) -> None:
        data = self._get_session(no_load=True)
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(self._serialize(data), ttl, revision=1)
        sid, token = self._service.create(copy, ttl, self._registry.config.route)
        self._session_key = str(sid)
        self._remember(sid, copy, token, local=True)
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
        if self._move or self._copy is None or payload != self._loaded_payload:
            return self._save_changed(payload)
        if self._modified or self._refresh_due(self._copy):
            # Unchanged content: refresh the expiry with a touch, which also tells whether the
            # session was deleted meanwhile (Django's UpdateError contract).
            return self._touch(payload)
        statistics.incr("saves_skipped_unchanged")
        return None

    def _save_new(self, payload: bytes) -> None:
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(payload, ttl, revision=1)
        located = self._locate(self.session_key)
        if located is None:
            sid, token = self._service.create(copy, ttl, self._registry.config.route)
            self._session_key = str(sid)
        else:
            sid, token = located[0], self._service.add(*located, copy, ttl)
            if token is None:
                raise CreateError
        self._remember(sid, copy, token, local=True)

    def _save_changed(self, payload: bytes) -> None:
        located = self._locate(self.session_key)
        if located is None or self._copy is None:
            raise UpdateError
        ttl = self.get_expiry_age()
        copy = self._service.new_copy(payload, ttl, self._copy.revision + 1)
        if self._move is not None:
            return self._relocate(located, copy, ttl)
        if self._registry.writer is not None:
            return self._save_async(located, copy, ttl)
        try:
            result, token = self._service.update(*located, copy, ttl)
        except NodeUnavailable:
            result, token = UpdateResult.LOST, None
        return self._settle(result, located, copy, token, ttl)

    def _save_async(self, located: Located, copy: Copy, ttl: int) -> None:
        """SESSION_BACKUP_ASYNC: write after the response, in order per session.

        Until the write lands, this process serves its own copy (token None); other processes
        may read the previous version meanwhile (msm #312, documented). If the primary lost the
        session or cannot be reached, the new content goes to the backup copy, so the next
        request relocates the session with this request's changes.
        """
        sid, node = located
        service, sticky = self._service, self._registry.sticky
        self._remember(sid, copy, None, local=True)

        def write() -> None:
            try:
                result, token = service.update(sid, node, copy, ttl)
            except NodeUnavailable:
                result, token = UpdateResult.LOST, None
            if sticky is not None:
                if result is UpdateResult.STORED:
                    sticky.confirm(str(sid), copy, token)
                else:
                    sticky.forget(str(sid))
            if result is UpdateResult.LOST:
                service.write_backup(sid, node, service.pack(copy), ttl)
            elif result is UpdateResult.DELETED:
                logger.warning("session %s was deleted before its write; not resurrected", sid)

        self._registry.writer.submit(str(sid), write)  # type: ignore[union-attr]

    def _touch(self, payload: bytes) -> None:
        located = self._locate(self.session_key)
        assert located is not None and self._copy is not None
        ttl = self.get_expiry_age()
        try:
            result = self._service.touch(*located, self._copy, ttl)
        except NodeUnavailable:
            return None  # both copies hold this content; a slow node is no reason to move it
        if result is UpdateResult.STORED:
            return None
        copy = self._service.new_copy(payload, ttl, self._copy.revision + 1)
        return self._settle(result, located, copy, None, ttl)

    def _settle(
        self, result: UpdateResult, located: Located, copy: Copy, token: bytes | None, ttl: int
    ) -> None:
        if result is UpdateResult.DELETED:
            self._forget_local(located[0])
            raise UpdateError
        if result is UpdateResult.LOST:
            self._move = "lost"
            return self._relocate(located, copy, ttl)
        self._remember(located[0], copy, token, local=True)
        return None

    def _relocate(self, located: Located, copy: Copy, ttl: int) -> None:
        """Move the session to a new key on a live node and retire every copy of the old key."""
        old_sid, old_node = located
        reason = self._move
        new_sid, token = self._service.create(copy, ttl, self._registry.config.route)
        self._service.delete(old_sid, old_node, ttl, copy.revision, moved_to=new_sid)
        self._forget_local(old_sid)
        logger.info("session %s moved to %s (%s)", old_sid, new_sid, reason)
        self._session_key = str(new_sid)
        self._remember(new_sid, copy, token, local=True)
        signal = session_taken_over if reason == "takeover" else session_relocated
        statistics.incr("takeovers" if reason == "takeover" else "relocations")
        signal.send(sender=type(self), old_key=str(old_sid), new_key=str(new_sid))

    def _forget_local(self, sid: SessionId) -> None:
        if self._registry.sticky is not None:
            self._registry.sticky.forget(str(sid))

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
        self._forget_local(located[0])
        revision = self._copy.revision if self._copy is not None else 0
        self._service.delete(*located, settings.SESSION_COOKIE_AGE, revision)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: nodes expire copies by their TTL (kept so ``clearsessions`` works)."""
