"""The current user's sessions: ``path("account/sessions/", include("django_msm.urls"))``.

One page lists them, "this device" marked, with a button to end each other session and one to
sign out of all other devices (POST with CSRF; login required). Forms name a session by its
``handle``, never by its key. The template is ``django_msm/sessions.html``: override it in the
site's templates to match its look; it gets ``sessions`` (``UserSession``s) and ``current``
(the handle of this device's session).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import user_sessions


def _current(request: HttpRequest) -> str | None:
    key = request.session.session_key
    return None if key is None else user_sessions.session_handle(key)


@login_required
@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    context = {"sessions": user_sessions.list_for(request.user), "current": _current(request)}
    return render(request, "django_msm/sessions.html", context)


@login_required
@require_POST
def end_session(request: HttpRequest) -> HttpResponse:
    """End one other session of this user; this device's own session ends by logging out."""
    handle = request.POST.get("session", "")
    if handle and handle != _current(request):
        for session in user_sessions.list_for(request.user):
            if session.handle == handle:
                user_sessions.end(request.user, session.session_key)
                break
    return redirect("django_msm:sessions")


@login_required
@require_POST
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    user_sessions.end_all(request.user, keep=request.session.session_key)
    return redirect("django_msm:sessions")
