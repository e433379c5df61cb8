"""UserTrackingMixin: the session store tells the per-user index what happened to its session.

The store knows, from its own data, which user a session belongs to (``_auth_user_id``) and under
which key it lives; it remembers the pair the index was last told (``_tracked``) and reports a
change after each write, so every way Django changes them reaches the index with no extra node
call on a request that neither logs in nor out:

* ``login``: a key is cycled (``cycle_key``: a new key, then the old one deleted) or the session
  flushed, then the user id set; the save that follows adds the entry;
* ``logout`` and ``flush``: the delete of the tracked key drops it;
* a relocated or taken-over session: the save returns a new key; the entry follows it;
* any load of a user's session: ``seen`` refreshes last-seen, at most once per
  USER_SESSIONS_TOUCH_INTERVAL per session and process.

``client_meta`` is the request's ``META``, set by ``django_msm.middleware`` when IP addresses or
user agents are recorded; with Django's own middleware entries carry neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import SESSION_KEY

from .core.user_index import Prefetch
from .core.user_service import Tracked, UserSessionService

EXPIRY_KEY = "_session_expiry"  # SessionBase.set_expiry's entry


class UserTrackingMixin:
    """For ``SessionStore``: sets ``_users`` (None when USER_SESSIONS is off)."""

    _users: UserSessionService | None = None
    _session_key: str | None
    client_meta: Mapping[str, Any] | None = None
    _tracked: Tracked = (None, None)

    get_expiry_age: Any  # SessionBase's (declared here only for the type checker)

    def _track_loaded(self, data: dict[str, Any], key: str | None) -> None:
        users = self._users
        if users is None:
            return
        owner = data.get(SESSION_KEY)
        self._tracked = (None if owner is None else str(owner), key)
        if owner is not None and key is not None:
            users.seen(str(owner), key, self.client_meta,
                       lambda: self.get_expiry_age(expiry=data.get(EXPIRY_KEY)))

    def _track_ahead(self, data: dict[str, Any]) -> Prefetch | None:
        """Before a write that will change the index entry of the session's user (a login, a
        new key): the reads of that user's index, deferred to leave with the write and share
        its round trip (``UserIndex.prefetch``). Nothing on a write by the same user under the
        same key."""
        users, owner = self._users, data.get(SESSION_KEY)
        if users is None or owner is None or self._tracked == (str(owner), self._session_key):
            return None
        return users.prefetch(str(owner))

    @staticmethod
    def _track_settle(ahead: Prefetch | None) -> None:
        """After the write, whatever happened: a prefetch nobody used is read all the same,
        or dropped unsent if it never left."""
        if ahead is not None:
            ahead.pending.settle()

    def _track_written(self, data: dict[str, Any], ahead: Prefetch | None = None) -> None:
        users = self._users
        if users is None:
            return
        owner = data.get(SESSION_KEY)
        before, after = self._tracked, (None if owner is None else str(owner), self._session_key)
        if after == before:
            return
        self._tracked = after
        if before[0] is not None or after[0] is not None:
            age = self.get_expiry_age(expiry=data.get(EXPIRY_KEY))
            users.follow(before, after, self.client_meta, age, ahead)

    def _track_deleted(self, key: str) -> None:
        users = self._users
        owner, tracked_key = self._tracked
        if users is not None and owner is not None and key == tracked_key:
            self._tracked = (None, None)
            users.logged_out(owner, key)
