"""URLs of the test app (``views.py``)."""

from django.urls import include, path

from tests.http_app import views

urlpatterns = [
    path("health/", views.health),
    path("count/", views.count),
    path("read/", views.read),
    path("big/", views.big),
    path("login/", views.login_view),
    path("stats/", views.stats),
    path("static/app.css", views.static_writer),
    path("favicon.ico", views.static_writer),
    path("slow/count/", views.slow_count),
    path("slow/read/", views.slow_read),
    path("slow/locked-count/", views.locked_count),
    path("slow/readonly-read/", views.readonly_read),
    path("stats/full/", views.full_stats),
    path("fault/", include("tests.locking_fault_urls")),
]
