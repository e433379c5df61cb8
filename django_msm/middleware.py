"""``django_msm.middleware.SessionMiddleware``: Django's session middleware plus msm's
request-scoped features.

It inherits every behaviour of ``django.contrib.sessions.middleware.SessionMiddleware``
(cookie flags, ``Vary: Cookie``, ``SESSION_SAVE_EVERY_REQUEST``, no save on 5xx,
``UpdateError`` → ``SessionInterrupted``, deleting the cookie of an emptied session, sync and
async views) and adds:

* ``REQUEST_URI_IGNORE_PATTERN``: requests whose path matches get an inert session. They never
  load, create or save a session and never set or delete a cookie, even if a view touches
  ``request.session`` (msm #401, where one static file could replace the user's cookie). The
  pattern is searched in ``request.path`` only, never in the query string (msm #371).
* ``LOCKING_MODE`` and the ``@session_lock``/``@session_readonly`` marks: whether this request
  locks its session (lazily, at the first load). The lock is released after the session is
  saved, on every path: normal responses, exceptions, 5xx, flush, login, relocation, streaming
  responses. A lock that cannot be had answers 503 with ``Retry-After`` (policy "fail").
* a save refused by the session's witness (``SessionConflict``: another request moved or
  changed the session meanwhile) answers 503 with ``Retry-After: 1``; nothing of the request's
  session changes was stored, and when the session moved the response carries its new key.
* per-request statistics (requests with and without a session).
* the client of the request (``META``) for the per-user index's IP address and user agent,
  when USER_SESSIONS_RECORD_IP or _USER_AGENT is on; read only when an entry is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from .core.config import LockingMode, MsmConfig
from .core.stats import statistics
from .exceptions import LockTimeout, SessionConflict
from .runtime import get_cluster, get_config


class InertSession(SessionBase):
    """The session of an ignored request: an empty dict that never touches a node."""

    def load(self) -> dict[str, Any]:
        return {}

    def exists(self, session_key: str | None) -> bool:
        return False

    def create(self) -> None:
        """Do nothing: ignored requests never create sessions."""

    def save(self, must_create: bool = False) -> None:
        """Do nothing: ignored requests never write sessions."""

    def delete(self, session_key: str | None = None) -> None:
        """Do nothing: ignored requests never delete sessions."""

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing is stored."""


class SessionMiddleware(DjangoSessionMiddleware):
    """Drop-in replacement for Django's ``SessionMiddleware``; see the module docstring."""

    def process_request(self, request: HttpRequest) -> None:
        config = get_config()
        pattern = config.ignore_pattern
        if pattern is not None and pattern.search(request.path):
            request.session = InertSession()
            request._msm_ignored = True  # type: ignore[attr-defined]
            return
        super().process_request(request)
        session: Any = request.session  # django_msm's SessionStore (SESSION_ENGINE)
        session.lock_wanted = _mode_wants_lock(config, request)
        if config.user_sessions and (config.record_ip or config.record_user_agent):
            session.client_meta = request.META  # read only at a login or a refresh

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        """Apply the view's lock mark, or auto mode's verdict for (method, view)."""
        session = getattr(request, "session", None)
        if session is None or getattr(request, "_msm_ignored", False):
            return
        mark = getattr(view, "msm_lock", None)
        if mark is not None:
            session.lock_wanted = mark
        elif get_config().locking_mode is LockingMode.AUTO:
            kind = f"{request.method} {view.__module__}.{getattr(view, '__qualname__', view)}"
            request._msm_kind = kind  # type: ignore[attr-defined]
            session.lock_wanted = not get_cluster().read_only.is_read_only(kind)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, LockTimeout):
            return None
        response = HttpResponse("The session is busy; retry shortly.", status=503)
        response["Retry-After"] = str(math.ceil(get_config().lock_expiration))
        return response

    def process_response(  # type: ignore[override]  # streaming responses are responses too
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_msm_ignored", False):
            return response
        session = getattr(request, "session", None)
        if session is None:
            return super().process_response(request, cast(HttpResponse, response))
        settle = getattr(session, "settle_modified", None)
        modified = session.accessed and (settle() if settle else session.modified)
        with_session = session.session_key is not None or session.accessed
        statistics.incr("requests_with_session" if with_session else "requests_without_session")
        try:
            return super().process_response(request, cast(HttpResponse, response))
        except SessionConflict as conflict:
            return _refused_save(session, conflict)
        finally:
            release = getattr(session, "release_lock", None)
            if release is not None:
                release()
            kind = getattr(request, "_msm_kind", None)
            if kind is not None and session.accessed:
                get_cluster().read_only.observe(kind, modified)


def _refused_save(session: SessionBase, conflict: SessionConflict) -> HttpResponse:
    """503: this request's session changes were not stored. A retry is safe; when the session
    moved, the cookie leads there (as Django's middleware would set it)."""
    response = HttpResponse("The session changed meanwhile; retry.", status=503)
    response["Retry-After"] = "1"
    if conflict.moved_to is not None:
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            conflict.moved_to,
            max_age=None if session.get_expire_at_browser_close() else session.get_expiry_age(),
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=settings.SESSION_COOKIE_HTTPONLY,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
    return response


def _mode_wants_lock(config: MsmConfig, request: HttpRequest) -> bool:
    """LOCKING_MODE's verdict before the view is known (auto: lock until proven read-only)."""
    if config.locking_mode is LockingMode.URI:
        return config.lock_pattern is not None and bool(config.lock_pattern.search(request.path))
    return config.locking_mode in (LockingMode.ALL, LockingMode.AUTO)
