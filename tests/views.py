"""Small views the integration tests drive through ``django.test.Client`` and SessionMiddleware.

Every view answers with the session as the view saw it (JSON), so a test can tell "my data is
intact" from "I got an empty session" without reaching into the store. The session key a client
ends up with is the cookie the middleware sets *after* the view, so tests read it from the
response's cookies, not from these bodies.
"""

from __future__ import annotations

import base64
import os

from django.http import HttpRequest, JsonResponse

# A safety bound for /big/: the tests need ~1.5 MB; nothing should ask for more than this.
MAX_BIG_SIZE = 4_000_000


def _snapshot(request: HttpRequest) -> JsonResponse:
    session = request.session
    data = {name: value for name, value in session.items() if name != "big"}
    if "big" in session:
        data["big_length"] = len(session["big"])  # the blob itself stays out of the reply
    return JsonResponse({"key": session.session_key, "data": data})


def visit(request: HttpRequest) -> JsonResponse:
    """Count the visit and append ``?tag=`` to a list: one write per request, data per user.

    The list is appended in place (``setdefault(...).append``), the way application code
    often mutates a session; the counter assignment also sets Django's ``modified`` flag.
    """
    session = request.session
    session["count"] = session.get("count", 0) + 1
    session.setdefault("history", []).append(request.GET.get("tag", ""))
    return _snapshot(request)


def read(request: HttpRequest) -> JsonResponse:
    """Read the session without changing it: a read-only request."""
    return _snapshot(request)


def logout(request: HttpRequest) -> JsonResponse:
    """``flush()``: delete the stored session and forget the key, as ``auth.logout`` does."""
    request.session.flush()
    return JsonResponse({"key": request.session.session_key, "data": {}})


def store_big(request: HttpRequest) -> None:
    """Store ``?size=`` characters of base64 text made from random (incompressible) bytes.

    The text goes under ``big``; zlib cannot shrink it, so its size is what the node gets.
    The app of the HTTP tests (``tests/http_app/views.py``) stores its ``big`` the same way.
    """
    size = min(int(request.GET.get("size", "0")), MAX_BIG_SIZE)
    raw = os.urandom(size * 3 // 4 + 3)
    request.session["big"] = base64.b64encode(raw).decode("ascii")[:size]


def big(request: HttpRequest) -> JsonResponse:
    """Store a large session value (``store_big``) and answer with the session."""
    store_big(request)
    return _snapshot(request)


def expire(request: HttpRequest) -> JsonResponse:
    """Give the session ``?seconds=`` of lifetime and a marker value."""
    request.session.set_expiry(int(request.GET["seconds"]))
    request.session["note"] = request.GET.get("note", "long-lived")
    return _snapshot(request)
