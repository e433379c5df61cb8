"""UserSessionService: a user's sessions, kept in step with logins and logouts, and ended.

Two callers (issue 15):

* the session store, as a session gains, changes or loses its user, or changes its key (a
  cycled, relocated or taken-over session): ``follow``, ``logged_out``, and ``seen`` for the
  last-seen time, which costs a dictionary lookup unless USER_SESSIONS_TOUCH_INTERVAL has
  passed for that session in this process;
* ``django_msm.user_sessions`` (list, end one, end all), which trusts no index entry without
  the session's own copies: a session is listed or ended only if its copy names the user.

Ending a session deletes its copies through ``BackupSessionService.delete``, which leaves
tombstones where a place cannot be reached, so neither a node that comes back nor an old cookie
replayed on another instance brings it back. Index trouble never fails a request: it is logged
and counted, and the next touch of the session writes its entry again.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..clock import Clock
from ..exceptions import MSMError
from .config import MsmConfig
from .copies import BackupSessionService
from .envelope import Copy
from .events import ClusterEvents
from .keys import parse
from .registry import NodeRegistry
from .retirement import Retirement
from .stats import statistics
from .sticky import StickyCopies
from .user_index import USER_AGENT_LENGTH, Entry, Prefetch, UserIndex

logger = logging.getLogger(__name__)
Tracked = tuple["str | None", "str | None"]  # (user id, session key) as the index knows them
Meta = Mapping[str, Any]  # the request's WSGI environ (REMOTE_ADDR, HTTP_USER_AGENT), or None
MAX_HOPS = 2  # forwards followed to a relocated session's current key
# Sessions whose last refresh this process remembers (about 150 bytes each); one forgotten
# costs one index read at its next request, which then finds it fresh and writes nothing.
RECENT_ENTRIES = 50_000


class Found(enum.Enum):
    LIVE = "live"  # the session exists and names the user
    GONE = "gone"  # no session under the key (ended, expired, evicted)
    FOREIGN = "foreign"  # the session belongs to someone else (or to nobody) now
    UNKNOWN = "unknown"  # no copy reachable: it may exist


@dataclass(frozen=True)
class Check:
    found: Found
    key: str  # the key the session lives under now (a relocated one's new key)
    copy: Copy | None = None


class RecentlySeen:
    """Session key → when this process last refreshed its entry: a bounded map whose lookup
    is one ``dict.get`` (atomic under the GIL); only inserts take the lock."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str, now: float, interval: float) -> bool:
        last = self._seen.get(key)
        return last is None or now - last >= interval

    def mark(self, key: str, now: float) -> None:
        with self._lock:
            self._seen.pop(key, None)
            self._seen[key] = now
            while len(self._seen) > self.max_entries:  # the oldest insert goes first
                del self._seen[next(iter(self._seen))]


class UserSessionService:
    """The per-user index kept by the session store, and the sessions it names ended."""

    def __init__(self, index: UserIndex, copies: BackupSessionService, retirement: Retirement,
                 registry: NodeRegistry, config: MsmConfig, clock: Clock, events: ClusterEvents,
                 sticky: StickyCopies | None):
        self.index, self.copies, self.registry = index, copies, registry
        self.retirement = retirement
        self.config, self.clock, self.events, self.sticky = config, clock, events, sticky
        self.recent = RecentlySeen(RECENT_ENTRIES)

    # -- kept by the session store ------------------------------------------------------------
    def seen(self, user_id: str, key: str, meta: Meta | None, age: Callable[[], int]) -> None:
        """A request loaded this user's session: refresh its entry once per interval."""
        now = self.clock.monotonic()
        if not self.recent.due(key, now, self.config.user_touch_interval):
            return
        self.recent.mark(key, now)
        self._guarded(self.index.update, user_id, self._touched(key, meta, age()))

    def prefetch(self, user_id: str) -> Prefetch:
        """Read the user's index while the session is written (``follow`` then uses it)."""
        return self.index.prefetch(user_id)

    def follow(self, before: Tracked, after: Tracked, meta: Meta | None, age: int,
               ahead: Prefetch | None = None) -> None:
        """A write changed the session's user or key: move, add or remove its entry."""
        (old_user, old_key), (user, key) = before, after
        if old_user is not None and old_key is not None and (old_user, old_key) != (user, key):
            if old_user == user and key is not None:
                self._guarded(self.index.update, user, self._renamed(old_key, key, meta, age),
                              ahead)
                self.recent.mark(key, self.clock.monotonic())
                return
            self.logged_out(old_user, old_key)
        if user is not None and key is not None:
            stored = self._guarded(self.index.update, user, self._added(key, meta, age), ahead)
            self.recent.mark(key, self.clock.monotonic())
            if stored is not None and len(stored) > self.config.user_sessions_max:
                self._guarded(self._enforce_limit, user, key, stored)

    def logged_out(self, user_id: str, key: str, reason: str = "logout") -> None:
        """The session of ``key`` no longer belongs to the user (its copies are handled by the
        caller): drop the entry."""
        self._guarded(self.index.update, user_id, _without({key}))
        self.events.session_ended(user_id, key, reason)

    def _guarded(self, operation: Callable[..., Any], *args: Any) -> Any:
        """Run an index operation; its failure is logged and counted, never raised."""
        try:
            return operation(*args)
        except MSMError as exc:  # never a failed request for the index's sake
            statistics.incr("user_index_failures")
            logger.warning("the user index was not updated: %s", type(exc).__name__)
            return None

    def _entry(self, key: str, meta: Meta | None, age: int, created: int | None = None) -> Entry:
        now = int(self.clock.time())
        ip = user_agent = None
        if meta is not None and self.config.record_ip:
            ip = str(meta.get("REMOTE_ADDR") or "")[:64] or None
        if meta is not None and self.config.record_user_agent:
            user_agent = str(meta.get("HTTP_USER_AGENT") or "")[:USER_AGENT_LENGTH] or None
        return Entry(key, now if created is None else created, now, age, ip, user_agent)

    def _added(self, key: str, meta: Meta | None, age: int) -> Callable[[list[Entry]], list]:
        return lambda entries: [e for e in entries if e.key != key] + [self._entry(key, meta, age)]

    def _renamed(self, old: str, key: str, meta: Meta | None, age: int) -> Callable[..., list]:
        def change(entries: list[Entry]) -> list[Entry]:
            before = next((e for e in entries if e.key == old), None)
            created = None if before is None else before.created
            entry = self._entry(key, meta, age, created)
            if before is not None and meta is None:  # keep what was recorded at login
                entry = replace(entry, ip=before.ip, user_agent=before.user_agent)
            return [e for e in entries if e.key not in (old, key)] + [entry]

        return change

    def _touched(self, key: str, meta: Meta | None, age: int) -> Callable[..., list]:
        interval = self.config.user_touch_interval

        def change(entries: list[Entry]) -> list[Entry]:
            before = next((e for e in entries if e.key == key), None)
            if before is not None and self.clock.time() - before.last_seen < interval:
                return entries  # another process refreshed it: nothing to write
            created = None if before is None else before.created
            entry = self._entry(key, meta, age, created)  # a missing entry is written again
            if before is not None:
                entry = replace(entry, ip=entry.ip or before.ip,
                                user_agent=entry.user_agent or before.user_agent)
            return [entry if e.key == key else e for e in entries] + ([] if before else [entry])

        return change

    def _enforce_limit(self, user_id: str, newest: str, stored: list[Entry]) -> None:
        """USER_SESSIONS_MAX: end the least recently seen sessions until the index fits.

        Only the excess is looked at, oldest first (an entry whose session is already gone is
        just dropped): a login at the limit reads a copy or two, not one per session of the
        user, which an account with many sessions could otherwise turn into a slow login.
        """
        excess = len(stored) - self.config.user_sessions_max
        others = sorted((e for e in stored if e.key != newest),
                        key=lambda e: (e.last_seen, e.created))
        for entry in others[:excess]:
            self.end(user_id, entry.key, "limit")

    # -- listing and ending -------------------------------------------------------------------
    def sessions(self, user_id: str) -> list[Entry]:
        """The user's sessions whose copies say they exist (or cannot be reached), newest
        first. Entries of ended, expired or foreign sessions are dropped from the index."""
        listed, dropped, moved = [], set(), {}
        for entry in self.index.read(user_id):
            check = self.check(user_id, entry.key)
            if check.found in (Found.GONE, Found.FOREIGN):
                dropped.add(entry.key)
                continue
            if check.key != entry.key:
                moved[entry.key] = check.key
            listed.append(replace(entry, key=check.key))
        if dropped or moved:
            self._guarded(self.index.update, user_id, _cleaned(dropped, moved))
        return sorted(listed, key=lambda e: (e.last_seen, e.created), reverse=True)

    def check(self, user_id: str, key: str) -> Check:
        """What the session's own copies say, following a relocation's forwards."""
        for _ in range(MAX_HOPS + 1):
            sid = parse(key)
            node = None if sid is None else self.registry.node_for(sid)
            if sid is None or node is None:
                return Check(Found.GONE, key)
            loaded = self.copies.load(sid, node)
            if loaded.moved_to is not None:
                key = loaded.moved_to
                continue
            if loaded.unreachable:
                return Check(Found.UNKNOWN, key)
            if loaded.copy is None:
                return Check(Found.GONE, key)
            mine = self._owner(loaded.copy.payload) == user_id
            return Check(Found.LIVE if mine else Found.FOREIGN, key, loaded.copy)
        return Check(Found.GONE, key)

    def _owner(self, payload: bytes) -> str | None:
        try:
            owner = self.config.serializer().loads(payload).get(self.config.user_field)
        except Exception:  # the serializer may raise anything on foreign bytes
            return None
        return None if owner is None else str(owner)

    def end(self, user_id: str, key: str, reason: str) -> bool:
        """End the user's session of ``key`` everywhere; False if it is not (or no longer) the
        user's, or none of its copies could be reached (its entry then stays, to retry)."""
        check = self.check(user_id, key)
        if check.found is Found.UNKNOWN:
            logger.warning("a session could not be ended: none of its copies answered")
            return False
        self._guarded(self.index.update, user_id, _without({key, check.key}))
        if check.found is not Found.LIVE or check.copy is None:
            return False
        sid = parse(check.key)
        node = None if sid is None else self.registry.node_for(sid)
        assert sid is not None and node is not None  # check() found its copy through them
        left = math.ceil(check.copy.expires_at - self.clock.time())
        ttl = max(self.config.session_lifetime, left)  # tombstones outlive every copy
        self.retirement.delete(sid, node, ttl, check.copy.revision)
        if self.sticky is not None:
            self.sticky.forget(check.key)
        statistics.incr("sessions_ended")
        self.events.session_ended(user_id, check.key, reason)
        return True

    def end_all(self, user_id: str, keep: str | None, reason: str) -> int:
        """End every session of the user but ``keep``; return how many were ended."""
        keep_key = None if keep is None else self.check(user_id, keep).key
        return sum(
            self.end(user_id, entry.key, reason)
            for entry in self.sessions(user_id)
            if entry.key not in (keep, keep_key)
        )


def _without(keys: set[str]) -> Callable[[list[Entry]], list[Entry]]:
    return lambda entries: [e for e in entries if e.key not in keys]


def _cleaned(dropped: set[str], moved: dict[str, str]) -> Callable[[list[Entry]], list[Entry]]:
    def change(entries: list[Entry]) -> list[Entry]:
        kept = [replace(e, key=moved.get(e.key, e.key)) for e in entries if e.key not in dropped]
        return list({e.key: e for e in kept}.values())

    return change
