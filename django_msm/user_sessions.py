"""Every session of a user: list them, end one, log out everywhere (issue 15).

Usage::

    from django_msm import user_sessions

    for session in user_sessions.list_for(request.user):      # newest first
        print(session.created, session.last_seen, session.ip, session.user_agent)
    user_sessions.end(request.user, session_key)               # True if it was the user's
    user_sessions.end_all(request.user, keep=request.session.session_key)   # "other devices"

The index behind it lives on the nodes (``core.user_index``), kept by the session engine at
every login, logout, key change and relocation; a session is listed or ended only when its own
stored copy names the user. An ended session's copies are deleted, or retired by tombstones where
a node cannot be reached, so no node coming back and no replayed cookie revives it. Each ended
session sends ``signals.session_ended``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .core.user_index import Entry
from .core.user_service import UserSessionService
from .exceptions import ConfigurationError
from .runtime import get_cluster

HANDLE_SALT = "django_msm.user_sessions.handle"


@dataclass(frozen=True)
class UserSession:
    """One live session of a user. ``ip`` and ``user_agent`` are None unless recorded
    (USER_SESSIONS_RECORD_IP / _USER_AGENT, with ``django_msm.middleware``)."""

    session_key: str
    created: datetime
    last_seen: datetime
    ip: str | None
    user_agent: str | None

    @property
    def handle(self) -> str:
        """An opaque, stable name for this session that is safe to put in a page or a form:
        the session key itself is a credential and never leaves the server."""
        return session_handle(self.session_key)


def session_handle(session_key: str) -> str:
    return salted_hmac(HANDLE_SALT, session_key, algorithm="sha256").hexdigest()[:24]


def user_id_of(user: Any) -> str:
    """The id Django stores in the session for ``user`` (a model instance, or the id itself)."""
    meta = getattr(user, "_meta", None)
    if meta is None:
        return str(user)
    if getattr(user, "pk", None) is None:
        msg = "user_sessions needs a saved user (anonymous users have no sessions to list)"
        raise ValueError(msg)
    return str(meta.pk.value_to_string(user))


def _service() -> UserSessionService:
    users = get_cluster().users
    if users is None:
        msg = "DJANGO_MSM['USER_SESSIONS'] is off: there is no index of users' sessions"
        raise ConfigurationError(msg)
    return users


def _when(seconds: int) -> datetime:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def _session(entry: Entry) -> UserSession:
    return UserSession(
        entry.key, _when(entry.created), _when(entry.last_seen), entry.ip, entry.user_agent
    )


def list_for(user: Any) -> list[UserSession]:
    """Return the user's live sessions, the most recently seen first."""
    return [_session(entry) for entry in _service().sessions(user_id_of(user))]


def end(user: Any, session_key: str) -> bool:
    """End that session of the user everywhere: its copies, its index entry. True if it was a
    live session of this user; False for anyone else's key, an ended one, or one whose copies
    no node holding them answered for (it stays listed, to be ended later)."""
    return _service().end(user_id_of(user), session_key, "end")


def end_all(user: Any, keep: str | None = None, *, reason: str = "end_all") -> int:
    """End every session of the user except ``keep`` (the current one, for "sign out of other
    devices"); return how many were ended."""
    return _service().end_all(user_id_of(user), keep, reason)


def end_on_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of the user model, with END_SESSIONS_ON_PASSWORD_CHANGE: end every session
    of a user whose password was just set. ``set_password`` keeps the raw password in
    ``_password`` until ``save()`` has run, so a save without a new password costs nothing.
    The request that changed it keeps its session through ``update_session_auth_hash`` (as
    Django's own views call it), which stores it again under a new key."""
    if getattr(instance, "_password", None) is None:
        return
    cluster = get_cluster()
    if cluster.users is not None and cluster.config.end_sessions_on_password_change:
        end_all(instance, reason="password_change")
