"""Views of the locking-under-faults test (``tests/test_locking_under_faults.py``), served by the
gunicorn test app under ``/fault/``.

Every session the test opens carries a ``lineage`` (the test's name for the user) from its first
request on; the counter is incremented by exactly one per request that answers 200. A response
names the lineage it found, so a session that came back empty (a logout) or as another user's is
seen by the client. No view touches the database: the engine is all that is measured.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path


def _answer(request: HttpRequest, count: object) -> JsonResponse:
    session = request.session
    lineage = session.get("lineage")  # loads first: ``key`` is then where the load led
    return JsonResponse({
        "instance": settings.INSTANCE,
        "key": session.session_key,
        "lineage": lineage,
        "count": count,
    })


def start(request: HttpRequest) -> JsonResponse:
    """Open a new session for ``?lineage=`` with its counter at 0."""
    request.session["lineage"] = request.GET["lineage"]
    request.session["count"] = 0
    return _answer(request, 0)


def increment(request: HttpRequest) -> JsonResponse:
    """Add one to the counter and answer the new value: the client's acknowledgement.

    ``?work=`` seconds (at most 1) pass between reading the counter and writing it back.

    A session that lost its lineage is answered as it is, unchanged: the client counts it as a
    logout (Django's middleware deletes the cookie of an emptied session).
    """
    session = request.session
    if "lineage" not in session:
        return _answer(request, None)
    seen = session["count"]
    time.sleep(min(float(request.GET.get("work", "0")), 1.0))  # the view's own work
    session["count"] = seen + 1
    return _answer(request, session["count"])


def read(request: HttpRequest) -> JsonResponse:
    """Answer the counter, change nothing."""
    return _answer(request, request.session.get("count"))


urlpatterns = [
    path("start/", start),
    path("increment/", increment),
    path("read/", read),
]
