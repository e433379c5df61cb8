"""Views for tests/test_change_detection.py."""

from datetime import date

from django.http import HttpResponse
from django.urls import path


def append(request):
    request.session["cart"].append("pear")  # in place: Django's own flag stays False
    return HttpResponse("ok")


def read(request):
    return HttpResponse(",".join(request.session["cart"]))


def append_date(request):
    """What pickle-era code does: JSON cannot encode a date. Reading ``modified`` must not fail."""
    request.session["cart"].append(date.today())
    return HttpResponse(f"modified={request.session.modified}")


def set_date(request):
    request.session["d"] = date.today()
    return HttpResponse("ok")


urlpatterns = [
    path("append/", append),
    path("read/", read),
    path("append-date/", append_date),
    path("set-date/", set_date),
]
