"""Views and URLs of the per-user sessions tests (``tests/test_user_sessions*.py``): log in and out
with ``django.contrib.auth``, ask who is logged in, change the session, and the site views of
``django_msm.urls``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.http import HttpRequest, JsonResponse
from django.test import override_settings
from django.urls import include, path
from django.views.decorators.http import require_POST


def _who(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


@require_POST
def log_in(request: HttpRequest) -> JsonResponse:
    user = authenticate(request, username=request.POST["username"],
                        password=request.POST["password"])
    assert user is not None, "wrong test credentials"
    login(request, user)
    return _who(request)


def log_out(request: HttpRequest) -> JsonResponse:
    logout(request)
    return _who(request)


def visit(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return _who(request)


@require_POST
def change_password(request: HttpRequest) -> JsonResponse:
    """What Django's PasswordChangeView does: save the new password, keep this device in."""
    user = request.user
    user.set_password(request.POST["password"])
    user.save()
    update_session_auth_hash(request, user)
    return _who(request)


urlpatterns = [
    path("password/", change_password),
    path("login/", log_in),
    path("logout/", log_out),
    path("whoami/", _who),
    path("visit/", visit),
    path("account/sessions/", include("django_msm.urls")),
]

TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
MIDDLEWARE = [
    "django_msm.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def app_settings(**extra: Any) -> override_settings:
    """This module as the site, behind django_msm's middleware (it records IPs and agents)."""
    return override_settings(
        ROOT_URLCONF="tests.user_sessions_app", MIDDLEWARE=MIDDLEWARE, TEMPLATES=TEMPLATES,
        LOGIN_URL="/login/", **extra,
    )
