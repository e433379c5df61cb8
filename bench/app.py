"""The Django side of the benchmark: settings, the session content and four tiny views.

Both engines serve the same views with the same session content through Django's stock
``SessionMiddleware``, so the only difference between two measured requests is the engine.
This module is the benchmark's ``ROOT_URLCONF``.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

ENGINES = {
    "django": "django.contrib.sessions.backends.cache",
    # The same engine with its cache's close() made a no-op during its requests: the connection
    # survives request_finished, as msm's pool does. Not a stock set-up; it shows how much of
    # the stock engine's cost is its per-request reconnect.
    "django-kept": "django.contrib.sessions.backends.cache",
    "msm": "django_msm.session",
}
KEEPS_CONNECTIONS = frozenset({"django-kept"})
# name -> (url, what the view does to the session)
SHAPES = {
    "read": "/read/",  # loads an existing session, changes nothing
    "modify": "/modify/",  # changes one key of an existing session
    "create": "/create/",  # no cookie: creates and saves a session
}
BASELINE = "/noop/"  # never touches the session: the request cycle without a session engine

_counter = itertools.count()


def url(label: str) -> str:
    """The URL of a shape, or of the no-op request for ``"baseline"``."""
    return BASELINE if label == "baseline" else SHAPES[label]


def session_content() -> dict[str, Any]:
    """A realistic small session: what ``django.contrib.auth.login`` stores, plus a short cart."""
    return {
        "_auth_user_id": "4217",
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


def django_settings(locations: list[str], msm_nodes: str) -> dict[str, Any]:
    """Settings for ``settings.configure``: both engines on the same memcached processes."""
    return {
        "DEBUG": False,
        "SECRET_KEY": "django_msm-bench-not-secret",
        "ALLOWED_HOSTS": ["testserver"],
        "USE_TZ": True,
        "ROOT_URLCONF": "bench.app",
        "INSTALLED_APPS": ["django.contrib.sessions", "django_msm"],
        "DATABASES": {},
        "MIDDLEWARE": ["django.contrib.sessions.middleware.SessionMiddleware"],
        # Django's engine as its docs configure it: PyMemcacheCache over every node.
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                "LOCATION": locations,
            }
        },
        "DJANGO_MSM": {"MEMCACHED_NODES": msm_nodes},
        "SESSION_ENGINE": ENGINES["django"],
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


def create(request: HttpRequest) -> HttpResponse:
    request.session.update(session_content())
    return HttpResponse(b"ok")


urlpatterns = [
    path("noop/", noop),
    path("read/", read),
    path("modify/", modify),
    path("create/", create),
]
