"""Views of the test app. Every answer is JSON naming the instance and worker pid that served it.

``key`` in a body is the session key as the view saw it; a key changed at save time (takeover,
relocation, login's ``cycle_key``) reaches the client only in ``Set-Cookie``, which is what the
tests follow.
"""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from django_msm.core.stats import statistics
from django_msm.decorators import session_lock, session_readonly
from tests.views import store_big

USERNAME = "alice"
PASSWORD = "wonderland"
STAFF_USERNAME = "operator"  # is_staff, with MSM_ADMIN=1 only
STAFF_PASSWORD = "cluster-page"
MAX_DELAY = 30.0  # a bound on ?delay=, in seconds


def _answer(request: HttpRequest, **extra: object) -> JsonResponse:
    session = request.session
    user = request.user if hasattr(request, "user") else None
    body = {
        "instance": settings.INSTANCE,
        "pid": os.getpid(),
        "key": session.session_key,
        "count": session.get("count", 0),
        "cart": session.get("cart", []),
        "big_length": len(session.get("big", "")),
        "user": user.get_username() if user is not None and user.is_authenticated else None,
        **extra,
    }
    return JsonResponse(body)


def health(request: HttpRequest) -> JsonResponse:
    """Readiness probe: never touches the session."""
    return JsonResponse({"instance": settings.INSTANCE, "pid": os.getpid()})


def count(request: HttpRequest) -> JsonResponse:
    """Increment the session's counter; ``?item=`` also appends to the cart (in place)."""
    session = request.session
    session["count"] = session.get("count", 0) + 1
    item = request.GET.get("item")
    if item:
        session.setdefault("cart", []).append(item)
    return _answer(request)


def read(request: HttpRequest) -> JsonResponse:
    """Read the session and change nothing: a read-only request."""
    return _answer(request)


def big(request: HttpRequest) -> JsonResponse:
    """Store ``?size=`` characters of incompressible text under ``big``."""
    store_big(request)
    return _answer(request)


def static_writer(request: HttpRequest) -> JsonResponse:
    """A "static" URL whose view writes the session anyway, as msm #401's filters did.

    With the ignore pattern configured, none of this may reach a node or the cookie.
    """
    session = request.session
    seen = dict(session.items())
    session["count"] = 10_000
    session["cart"] = ["written-by-static"]
    session.cycle_key()
    return JsonResponse({"instance": settings.INSTANCE, "seen": seen, "ignored": True})


@require_POST
def login_view(request: HttpRequest) -> JsonResponse:
    """Log in with ``django.contrib.auth`` (which rotates the session key)."""
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"error": "bad credentials"}, status=403)
    login(request, user)
    return _answer(request)


def stats(request: HttpRequest) -> JsonResponse:
    """This worker's django_msm counters; never touches the session."""
    return JsonResponse(
        {"instance": settings.INSTANCE, "pid": os.getpid(), **statistics.snapshot()["counters"]}
    )


def _delay(request: HttpRequest) -> float:
    return min(max(float(request.GET.get("delay", "0")), 0.0), MAX_DELAY)


def _slow_answer(request: HttpRequest, count: int, started: float) -> JsonResponse:
    """A light answer for the locking views: no ``request.user``, so no database."""
    return JsonResponse({
        "instance": settings.INSTANCE,
        "pid": os.getpid(),
        "key": request.session.session_key,
        "count": count,
        "elapsed": time.monotonic() - started,
    })


def slow_count(request: HttpRequest) -> JsonResponse:
    """Read the counter, wait ``?delay=`` seconds, write it back plus one.

    A read-modify-write spread over time: concurrent requests lose increments unless the
    session is locked.
    """
    started = time.monotonic()
    seen = request.session.get("count", 0)
    time.sleep(_delay(request))
    request.session["count"] = seen + 1
    return _slow_answer(request, seen + 1, started)


def slow_read(request: HttpRequest) -> JsonResponse:
    """Read the session, wait ``?delay=`` seconds, change nothing: a slow read-only request."""
    started = time.monotonic()
    seen = request.session.get("count", 0)
    time.sleep(_delay(request))
    return _slow_answer(request, seen, started)


@session_lock
def locked_count(request: HttpRequest) -> JsonResponse:
    """``slow_count`` marked ``@session_lock`` (its own function: marks are per function)."""
    return slow_count(request)


@session_readonly
def readonly_read(request: HttpRequest) -> JsonResponse:
    """``slow_read`` marked ``@session_readonly``."""
    return slow_read(request)


def full_stats(request: HttpRequest) -> JsonResponse:
    """This worker's django_msm counters and timings; never touches the session."""
    return JsonResponse(
        {"instance": settings.INSTANCE, "pid": os.getpid(), **statistics.snapshot()}
    )
