"""The Django side of the benchmark: settings, the session content and a few tiny views.

Every engine serves the same views with the same session content, so the only difference between
two measured requests is the engine (and, where a row says so, the session middleware).
This module is the benchmark's ``ROOT_URLCONF``.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import random
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

# name -> (url, what the view does to the session)
SHAPES = {
    "read": "/read/",  # loads an existing session, changes nothing
    "modify": "/modify/",  # changes one key of an existing session
    "create": "/create/",  # no cookie: creates and saves a session
}
BASELINE = "/noop/"  # never touches the session: the request cycle without a session engine
STOCK_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
MSM_MIDDLEWARE = "django_msm.middleware.SessionMiddleware"

_counter = itertools.count()


def url(label: str) -> str:
    """The URL of a shape, or of the no-op request for ``"baseline"``."""
    return BASELINE if label == "baseline" else SHAPES[label]


def create_url(size: int | None) -> str:
    """The URL that creates a session of the default content, or of about ``size`` bytes."""
    return SHAPES["create"] if size is None else f"/create/{size}/"


_users = itertools.count(4217)


def new_user_id() -> str:
    """A user id no session of this run has had yet."""
    return str(next(_users))


def session_content(size: int | None = None) -> dict[str, Any]:
    """A realistic small session (what ``django.contrib.auth.login`` stores, plus a short cart);
    with ``size``, padded to about ``size`` bytes of JSON by an incompressible ``blob``."""
    content: dict[str, Any] = {
        # One user per session, as on a real site: the per-user index (USER_SESSIONS_MAX) would
        # otherwise end a user's oldest sessions while the bench still reads them.
        "_auth_user_id": new_user_id(),
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "5f1d7a0c3e9b2846d1f0a7c4e8b3925d6a1c0f7e4b8d2a9c3f6e1b0d7a4c8e2f",
        "currency": "EUR",
        "cart": [
            {"sku": "BK-1042", "qty": 1, "price": "24.90"},
            {"sku": "MG-0007", "qty": 2, "price": "9.50"},
            {"sku": "TS-3310-L", "qty": 1, "price": "19.00"},
        ],
        "last_seen": 0,
    }
    if size is not None:
        base = len(json.dumps(content, separators=(",", ":")))
        content["blob"] = blob(max(0, size - base - len(',"blob":""')))
    return content


@functools.cache
def blob(length: int) -> str:
    """``length`` characters of base64 over random bytes: zlib gains little on it (about a
    quarter), as on an already-compressed or encrypted attribute. Cached: built once per size."""
    raw = random.Random(length).randbytes(length * 3 // 4 + 3)
    return base64.b64encode(raw).decode()[:length]


def django_settings(caches: dict[str, dict[str, Any]], msm_nodes: str) -> dict[str, Any]:
    """Settings for ``settings.configure``; engines override the session settings per batch."""
    return {
        "DEBUG": False,
        "SECRET_KEY": "django_msm-bench-not-secret",
        "ALLOWED_HOSTS": ["testserver"],
        "USE_TZ": True,
        "ROOT_URLCONF": "bench.app",
        "INSTALLED_APPS": ["django.contrib.sessions", "django_msm"],
        "DATABASES": {},
        "MIDDLEWARE": [STOCK_MIDDLEWARE],
        "CACHES": caches,
        "DJANGO_MSM": {"MEMCACHED_NODES": msm_nodes},
        "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
    }


def noop(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def read(request: HttpRequest) -> HttpResponse:
    user = request.session.get("_auth_user_id")
    items = len(request.session.get("cart", ()))
    if user is None:
        return HttpResponse(b"no session", status=409)  # the bench checks every status
    return HttpResponse(f"{user}:{items}".encode())


def modify(request: HttpRequest) -> HttpResponse:
    if "_auth_user_id" not in request.session:
        return HttpResponse(b"no session", status=409)
    request.session["last_seen"] = next(_counter)
    return HttpResponse(b"ok")


def create(request: HttpRequest, size: int | None = None) -> HttpResponse:
    request.session.update(session_content(size))
    return HttpResponse(b"ok")


urlpatterns = [
    path("noop/", noop),
    path("read/", read),
    path("modify/", modify),
    path("create/", create),
    path("create/<int:size>/", create),
]
