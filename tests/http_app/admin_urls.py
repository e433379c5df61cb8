"""URLs of the test app with the Django admin (``MSM_ADMIN=1``): the app's own, ``/admin/`` with
django_msm's cluster page, and the admin's static files served by the app (no web server in
front of gunicorn here).

``/favicon.ico`` answers 404 first: the app's own favicon view rewrites the session on purpose
(the REQUEST_URI_IGNORE_PATTERN tests), and a browser asks for it with every page.
"""

from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.http import HttpRequest, HttpResponseNotFound
from django.urls import path, re_path

from tests.http_app.urls import urlpatterns as app_urls


def no_icon(request: HttpRequest) -> HttpResponseNotFound:
    return HttpResponseNotFound()


urlpatterns = [
    path("favicon.ico", no_icon),
    *app_urls,
    path("admin/", admin.site.urls),
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
