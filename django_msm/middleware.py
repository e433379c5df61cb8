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
* per-request statistics (requests with and without a session).
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponseBase

from .conf import get_config
from .stats import statistics


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
        pattern = get_config().ignore_pattern
        if pattern is not None and pattern.search(request.path):
            request.session = InertSession()
            request._msm_ignored = True  # type: ignore[attr-defined]
            return
        super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_msm_ignored", False):
            return response
        session = getattr(request, "session", None)
        if session is not None:
            with_session = session.session_key is not None or session.accessed
            statistics.incr("requests_with_session" if with_session else "requests_without_session")
        return super().process_response(request, response)
