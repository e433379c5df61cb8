"""``path("account/sessions/", include("django_msm.urls"))``: the views of ``django_msm.views``,
named ``django_msm:sessions``, ``django_msm:end-session`` and ``django_msm:end-other-sessions``."""

from django.urls import path

from . import views

app_name = "django_msm"
urlpatterns = [
    path("", views.session_list, name="sessions"),
    path("end/", views.end_session, name="end-session"),
    path("end-others/", views.end_other_sessions, name="end-other-sessions"),
]
