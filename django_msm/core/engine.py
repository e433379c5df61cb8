"""SessionEngine: what one session store instance loads, saves and moves (no Django here).

``django_msm.session.SessionStore`` maps Django's contract onto one engine held per instance,
as Django's cache engine maps it onto one cache: the engine keeps what this request knows of
its session (the copy it loaded or wrote, whether it must move, its lock) and decides every
node operation through the cluster's parts. Payloads are bytes; the Django layer serializes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import NodeUnavailable, SessionConflict, SessionDeleted, SessionKeyTaken
from .cluster import Cluster
from .envelope import Copy
from .failover import MoveReason, plan_move
from .keys import SessionId, parse
from .locking import SessionLock
from .nodes import Node
from .outcomes import Loaded, Outcome, UpdateResult
from .readahead import ReadAhead
from .stats import statistics

logger = logging.getLogger(__name__)
Located = tuple[SessionId, Node]
Decode = Callable[[bytes], "dict[str, Any] | None"]
MAX_FORWARDS = 2  # a relocated session may be relocated again while a request is in flight


class SessionEngine:
    """One session's view of the cluster for the length of a request."""

    def __init__(self, cluster: Cluster, decode: Decode):
        self.cluster = cluster
        self.copies = cluster.copies
        self.decode = decode
        self.copy: Copy | None = None  # what was loaded or last written: revision, expiry
        self.token: bytes | None = None  # the home copy's version token, as loaded or written
        self.strict = False  # the request wanted its lock: its save is fenced strictly
        self.loaded_payload: bytes | None = None
        self.move: MoveReason | None = None  # why the session must move to a new key at save
        self.unreachable = False
        self.lock: SessionLock | None = None
        self._hops = 0  # forwards followed by this load (relocated keys)
        self.ahead = ReadAhead()  # the witness read of the coming save, once it changes
        self.loaded = False  # the copy in hand came from a load (not a create)

    def locate(self, key: str | None) -> Located | None:
        """Parse a key and find its node; None for anything that must not reach a node."""
        sid = parse(key)
        if sid is None:
            return None
        node = self.cluster.registry.node_for(sid)
        return None if node is None else (sid, node)

    def _remember(self, sid: SessionId, copy: Copy, token: bytes | None, local: bool) -> None:
        """Note the current copy; in sticky mode also keep it as the process-local primary."""
        self.copy = copy
        self.token = token
        self.loaded_payload = copy.payload
        self.move = None
        self.unreachable = False
        sticky = self.cluster.sticky
        if local and sticky is not None:
            sticky.remember(str(sid), copy, token)

    def forget_local(self, sid: SessionId) -> None:
        if self.cluster.sticky is not None:
            self.cluster.sticky.forget(str(sid))

    # -- loading ------------------------------------------------------------------------------
    def load(self, key: str | None, lock: bool) -> Outcome:
        """Load the session of ``key`` (taking its lock first if asked); a miss has key None."""
        located = self.locate(key)
        if located is None:
            return Outcome({}, None)
        if lock and self.lock is None:
            self.strict = True
            self.lock = self.cluster.locker.acquire_or_raise(*located)
        local = self._load_local(*located)
        if local is not None:
            return local
        with statistics.timer("load"):
            loaded = self.copies.load(*located)
        if loaded.moved_to is not None and self._hops < MAX_FORWARDS:
            return self._follow(loaded.moved_to, lock)
        if loaded.unreachable:
            self._warn(located, "has no reachable copy; serving it empty")
            self.unreachable = True
            return Outcome({}, key)
        data = self._decode(loaded.copy)
        if data is None or loaded.copy is None:
            return Outcome({}, None)
        token = loaded.token
        if loaded.copy.signed_with:  # a SECRET_KEY_FALLBACKS key: re-sign before it is removed
            token = self.cluster.rotation.resign(*located) or token
        self._remember(located[0], loaded.copy, token, local=not loaded.from_backup)
        self.loaded = True
        return Outcome(data, key, self._plan_move(*located, loaded))

    def _warn(self, located: Located, what: str) -> None:
        """Warn about this session by its tag and node, never its key. Repeats (every request
        while a node is down) are throttled per node."""
        sid, node = located
        tag = self.cluster.config.tag(sid)
        self.cluster.throttle.session(logger, logging.WARNING, tag, node.label, what)

    def _decode(self, copy: Copy | None) -> dict[str, Any] | None:
        return None if copy is None else self.decode(copy.payload)

    def _follow(self, key: str, lock: bool) -> Outcome:
        """Another request relocated this session: load it under its new key, and let this
        response carry that key too (a late reply must not undo the move)."""
        self._hops += 1
        statistics.incr("forwards_followed")
        self.release_lock()  # the old key's; the new key is locked by the load below
        outcome = self.load(key, lock)
        return Outcome(outcome.data, outcome.key, outcome.key is not None)

    def _load_local(self, sid: SessionId, node: Node) -> Outcome | None:
        """Sticky mode: serve the local copy if it is the current version."""
        sticky = self.cluster.sticky
        if sticky is None:
            return None
        entry = sticky.current(str(sid), lambda: self.copies.version(sid, node))
        data = self._decode(entry.copy) if entry is not None else None
        if entry is None or data is None:
            return None
        statistics.incr("loads_local")
        self._remember(sid, entry.copy, entry.token, local=False)
        return Outcome(data, str(sid), self._plan_move(sid, node, Loaded(entry.copy)))

    def _plan_move(self, sid: SessionId, node: Node, loaded: Loaded) -> bool:
        """Decide whether this session moves; True if the response must re-send the cookie."""
        move = plan_move(
            own_route=self.cluster.config.route,
            key_route=sid.route,
            from_backup=loaded.from_backup,
            relocate_now=loaded.relocate,
            on_failover_node=node.failover,
            regular_available=self.cluster.registry.regular_available,
            on_draining_node=node in self.cluster.registry.draining,
        )
        self.move = None if move is None else move.reason
        return move is not None and move.resend_cookie

    def exists(self, key: str | None) -> bool:
        located = self.locate(key)
        return located is not None and self.copies.load(*located).copy is not None

    def release_lock(self) -> None:
        """Release this request's session lock, if it holds one."""
        self.ahead.settle()  # the request is over: a witness read no save used goes back
        lock, self.lock = self.lock, None
        if lock is not None:
            self.cluster.locker.release(lock)

    # -- writing ------------------------------------------------------------------------------
    def create(self, payload: bytes, ttl: int) -> str:
        """Store a new session under a fresh key on an available node; return the key."""
        copy = self.copies.new_copy(payload, ttl, revision=1)
        sid, token = self.copies.create(copy, ttl, self.cluster.config.route)
        self._remember(sid, copy, token, local=True)
        self.loaded = False  # nothing to read ahead: the session was only just written
        return str(sid)

    def read_ahead(self, key: str | None) -> None:
        """Django set ``modified``: send the witness read of the coming save now, so that it
        is answered while the request goes on (``core.readahead``)."""
        quiet = self.ahead.pending is None and self.cluster.writer is None and self.move is None
        located = self.locate(key) if quiet and self.loaded and self.token else None
        if located is not None:
            self.ahead.start(str(located[0]), self.cluster.witness.read_ahead(*located))

    def save(self, key: str, payload: bytes, ttl: int, *, must_create: bool, touch: bool) -> str:
        """``_save``; then a witness read sent ahead and not used is read all the same."""
        try:
            return self._save(key, payload, ttl, must_create=must_create, touch=touch)
        finally:
            self.ahead.settle()

    def _save(self, key: str, payload: bytes, ttl: int, *, must_create: bool, touch: bool) -> str:
        """Write what changed; return the session's key (a new one if it moved).

        ``touch``: Django asked for a save of unchanged content (``modified`` or
        SESSION_SAVE_EVERY_REQUEST): refresh the expiry, which also tells whether the session
        was deleted meanwhile (Django's UpdateError contract). Raises SessionKeyTaken,
        SessionDeleted.
        """
        if self.unreachable:
            located = self.locate(key)
            if located is not None:
                self._warn(located, "not saved: its copies were unreachable")
            return key
        if must_create:
            return self._save_new(key, payload, ttl)
        if self.move or self.copy is None or payload != self.loaded_payload:
            return self._save_changed(key, payload, ttl)
        if touch or self._refresh_due(self.copy, ttl):
            return self._touch(key, payload, ttl)
        statistics.incr("saves_skipped_unchanged")
        return key

    def _save_new(self, key: str, payload: bytes, ttl: int) -> str:
        copy = self.copies.new_copy(payload, ttl, revision=1)
        located = self.locate(key)
        token: bytes | None
        if located is None:
            sid, token = self.copies.create(copy, ttl, self.cluster.config.route)
        else:
            sid, token = located[0], self.copies.add(*located, copy, ttl)
            if token is None:
                raise SessionKeyTaken
        self._remember(sid, copy, token, local=True)
        return str(sid)

    def _save_changed(self, key: str, payload: bytes, ttl: int) -> str:
        located = self.locate(key)
        if located is None or self.copy is None:
            raise SessionDeleted
        base = self.copy.revision
        copy = self.copies.new_copy(payload, ttl, base + 1, self.copy)
        if self.move is not None:
            try:
                return self._relocate(located, copy, ttl, base)
            except SessionConflict as conflict:
                if not self.move.optional or conflict.moved_to or conflict.deleted:
                    raise
                self.move = None  # another request changed it meanwhile: save in place
        if self.cluster.writer is not None:
            return self._save_async(located, copy, ttl, base)
        return self._commit(located, copy, ttl, base)

    def _commit(self, located: Located, copy: Copy, ttl: int, base: int) -> str:
        """Save through the witness (``core.witness``). Raises SessionConflict when refused,
        SessionDeleted when the session was deleted meanwhile."""
        try:
            commit = self.cluster.witness.commit(*located, copy, ttl, base, self.token,
                                                 self.strict, self.ahead.take(located[0]))
        except NodeUnavailable:  # neither the witness nor the home took it: move, if allowed
            return self._settle(UpdateResult.LOST, located, copy, None, ttl, base)
        except SessionConflict as conflict:
            if conflict.deleted:
                self.forget_local(located[0])
                raise SessionDeleted from conflict
            raise
        if commit.result is UpdateResult.LOST and commit.at_witness:
            return self._move_committed(located, copy, ttl)
        return self._settle(commit.result, located, copy, commit.token, ttl, base)

    def _save_async(self, located: Located, copy: Copy, ttl: int, base: int) -> str:
        """SESSION_BACKUP_ASYNC: write after the response, in order per session.

        Until the write lands, this process serves its own copy (token None); other processes
        may read the previous version meanwhile (msm #312, documented). The write is fenced at
        the witness as an unlocked save is, but the response is no commit (``Witness.later``).
        """
        sid, node = located
        job = self.cluster.witness.later(sid, node, copy, ttl, base, self.cluster.sticky)
        self._remember(sid, copy, None, local=True)
        assert self.cluster.writer is not None
        self.cluster.writer.submit(str(sid), job)
        return str(sid)

    def _touch(self, key: str, payload: bytes, ttl: int) -> str:
        located = self.locate(key)
        assert located is not None and self.copy is not None
        try:
            result = self.copies.touch(*located, self.copy, ttl)
        except NodeUnavailable:
            return key  # both copies hold this content; a slow node is no reason to move it
        if result is UpdateResult.STORED:
            return key
        base = self.copy.revision
        copy = self.copies.new_copy(payload, ttl, base + 1, self.copy)
        return self._settle(result, located, copy, None, ttl, base)

    def _settle(
        self, result: UpdateResult, located: Located, copy: Copy, token: bytes | None, ttl: int,
        base: int,
    ) -> str:
        if result is UpdateResult.DELETED:
            self.forget_local(located[0])
            raise SessionDeleted
        if result is UpdateResult.LOST:
            self.move = MoveReason.LOST
            return self._relocate(located, copy, ttl, base)
        self._remember(located[0], copy, token, local=True)
        return str(located[0])

    def _move_committed(self, located: Located, copy: Copy, ttl: int) -> str:
        """The witness took this save but the home did not: move the session, starting from
        this copy. If another request moved it first, that move passed the witness after this
        save and carries it: follow it. The save stands either way."""
        self.move = MoveReason.LOST
        try:
            return self._relocate(located, copy, ttl, copy.revision)
        except SessionConflict as conflict:
            self.forget_local(located[0])
            self._remember(located[0], copy, None, local=False)
            return conflict.moved_to or str(located[0])

    def _relocate(self, located: Located, copy: Copy, ttl: int, base: int) -> str:
        """Move the session to a new key that only this request can win (``core.retirement``);
        raise SessionConflict if another request moved or changed it since ``base``."""
        reason = self.move
        assert reason is not None
        new_sid, token = self.cluster.retirement.relocate(
            located, copy, ttl, base, reason, self.token
        )
        self.forget_local(located[0])
        self._remember(new_sid, copy, token, local=True)
        return str(new_sid)

    def _refresh_due(self, copy: Copy, ttl: int) -> bool:
        """True when less than half of the stored lifetime is left (SAVE_EVERY_REQUEST)."""
        return copy.expires_at - self.copies.clock.time() < ttl / 2

    def delete(self, key: str) -> None:
        """Remove every copy of ``key``'s session (logout, flush, cycle_key)."""
        self.ahead.settle()
        located = self.locate(key)
        if located is None:
            return
        self.forget_local(located[0])
        revision = self.copy.revision if self.copy is not None else 0
        self.cluster.retirement.delete(*located, self.cluster.config.session_lifetime, revision)
