"""URLs of the test app (``views.py``)."""

from django.urls import path

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
]
