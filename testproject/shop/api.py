"""JSON endpoints for the chaos harness's simulated users (``chaos/load.py``).

They work with any session engine. A "logged-in" session holds the user's name; every update
carries an id chosen by the client, so that an update acknowledged with 200 and missing later
can be named (a counter alone would let one unacknowledged write hide one lost write). A user
that is not logged in gets ``{"user": null}`` and nothing is written for them.

CSRF is off for these views only: they serve a load generator on loopback, not browsers.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

USER, OPS, CART = "chaos_user", "chaos_ops", "chaos_cart"


def _report(request: HttpRequest, full: bool = False) -> JsonResponse:
    session = request.session
    ops, cart = session.get(OPS, []), session.get(CART, [])
    body = {"user": session.get(USER), "ops": len(ops), "cart": len(cart)}
    if full:
        body.update({"op_ids": ops, "cart_ids": cart})
    return JsonResponse(body)


@csrf_exempt
@require_POST
def login(request: HttpRequest) -> JsonResponse:
    """Log in as ``user``: a fresh key, as ``django.contrib.auth.login`` rotates it."""
    session = request.session
    session.cycle_key()
    session.update({USER: request.POST["user"], OPS: [], CART: []})
    return _report(request)


def _append(request: HttpRequest, name: str) -> JsonResponse:
    session = request.session
    if session.get(USER) is not None:
        session[name] = [*session.get(name, []), request.POST["id"]]
    return _report(request)


@csrf_exempt
@require_POST
def increment(request: HttpRequest) -> JsonResponse:
    """Count one more (the update's id is added to the session's list)."""
    return _append(request, OPS)


@csrf_exempt
@require_POST
def add_to_cart(request: HttpRequest) -> JsonResponse:
    return _append(request, CART)


@csrf_exempt
@require_POST
def logout(request: HttpRequest) -> JsonResponse:
    """Log out as ``django.contrib.auth.logout`` does: flush the session."""
    request.session.flush()
    return JsonResponse({"user": None, "ops": 0, "cart": 0})


@require_GET
def read(request: HttpRequest) -> JsonResponse:
    """The whole session, read only."""
    return _report(request, full=True)
