"""Views for tests/test_locking.py, served through Django's full handler (tests use Client)."""

from __future__ import annotations

import time

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from django_msm.decorators import session_lock, session_readonly

SEEN: dict[str, bool] = {}


def count(request):
    value = request.session.get("n", 0)
    time.sleep(float(request.GET.get("delay", "0")))  # widen the read-modify-write window
    request.session["n"] = value + 1
    return HttpResponse(str(value + 1))


def read(request):
    SEEN["read"] = request.session.lock_wanted
    return HttpResponse(str(request.session.get("n")))


def sometimes_write(request):
    SEEN["sometimes_write"] = request.session.lock_wanted
    request.session.get("n")
    if request.GET.get("write"):
        request.session["n"] = 9
    return HttpResponse("ok")


def ends(request, how):
    request.session["touched"] = True
    if how == "error":
        raise ValueError("boom")
    if how == "flush":
        request.session.flush()
    if how == "cycle":
        request.session.cycle_key()
    if how == "stream":
        return StreamingHttpResponse(iter([b"a", b"b"]))
    return HttpResponse(status=500 if how == "five_hundred" else 200)


@session_readonly
def marked_reader(request):
    SEEN["marked_reader"] = request.session.lock_wanted
    return HttpResponse(str(request.session.get("n")))


@session_lock
def marked_writer(request):
    SEEN["marked_writer"] = request.session.lock_wanted
    request.session["n"] = 1
    return HttpResponse("ok")


urlpatterns = [
    path("count/", count),
    path("read/", read),
    path("sometimes/", sometimes_write),
    path("ends/<str:how>/", ends),
    path("marked/reader/", marked_reader),
    path("marked/writer/", marked_writer),
]
