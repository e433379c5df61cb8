"""Views for tests/test_change_detection.py."""

from django.http import HttpResponse
from django.urls import path


def append(request):
    request.session["cart"].append("pear")  # in place: Django's own flag stays False
    return HttpResponse("ok")


def read(request):
    return HttpResponse(",".join(request.session["cart"]))


urlpatterns = [path("append/", append), path("read/", read)]
