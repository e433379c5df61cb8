"""URLs of the test views (``tests/views.py``), driven by the integration tests."""

from django.urls import path

from tests import views

urlpatterns = [
    path("visit/", views.visit),
    path("read/", views.read),
    path("logout/", views.logout),
    path("big/", views.big),
    path("expire/", views.expire),
]
