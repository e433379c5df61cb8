"""The demo shop: one page that says who served it and where its session lives, and a cart.

Every page view counts a visit, so every request writes the session: that is what makes a
failover visible at once (the write relocates the session and re-creates its backup copy).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .placement import describe

ITEMS = ("apple", "pear", "cherry", "plum")


def _visit(request: HttpRequest) -> dict[str, Any]:
    """Count a visit and report the session as this response leaves it."""
    session = request.session
    sent_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    session["visits"] = session.get("visits", 0) + 1
    # Saved here rather than only by the middleware, so that the page shows the key this
    # response carries: a session read from its backup copy gets its new key while saving.
    session.save()
    placement = describe(session.session_key)
    user = request.user
    return {
        "instance": settings.INSTANCE,
        "mode": settings.MODE,
        "user": user.get_username() if user.is_authenticated else None,
        "visits": session["visits"],
        "cart": list(session.get("cart", [])),
        "session_key": placement.key,
        "sent_key": sent_key,
        "moved": bool(sent_key) and sent_key != placement.key,
        "primary": placement.primary,
        "backup": placement.backup,
        "nodes": [vars(node) for node in placement.nodes],
    }


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/home.html", {"report": _visit(request), "items": ITEMS})


@require_GET
def status_json(request: HttpRequest) -> JsonResponse:
    """The same report as the page, for the narrated tour and scripts."""
    return JsonResponse(_visit(request))


@require_POST
def add_to_cart(request: HttpRequest) -> HttpResponse:
    item = request.POST.get("item", "")
    if item in ITEMS:
        request.session["cart"] = [*request.session.get("cart", []), item]
    return redirect("home")


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Readiness probe for the cluster scripts: answers without touching the session."""
    return HttpResponse(f"ok {settings.INSTANCE}\n", content_type="text/plain")
