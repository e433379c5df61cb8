"""django_msm in the Django admin: the cluster page and the "Log out everywhere" action.

**The cluster page** (issue 16): what ``msm_status`` knows, for staff, refreshed live.

With ``django.contrib.admin`` installed, the admin's autodiscovery imports this module, which adds
the page to the default admin site: ``<admin>/msm-cluster/``, listed on the admin index and in
its side bar as "Session cluster". Staff only (``AdminSite.admin_view``): anyone else is sent to
the admin's login page. Nothing to configure.

A project with its own ``AdminSite`` calls ``install(my_site)`` once, where it creates the site::

    from django_msm.admin import install
    my_site = MyAdminSite(name="myadmin")
    install(my_site)

The page is rendered from ``ops.status.collect_status()`` (the probes, counts and published
statistics ``msm_status`` shows) through ``ops.cluster_page``. A small script fetches the page's
body again every ``REFRESH_SECONDS``; ``?format=json`` answers ``msm_status --json``'s document.
One collected status serves every viewer of a process for ``CACHE_SECONDS``, so a few open tabs
do not count the sessions of every node once each every few seconds.

**"Log out everywhere"** (issue 15): ``DjangoMsmConfig.ready()`` adds it to the model admin the
site registered for the user model, whatever class that is; a site whose user admin is
registered later (django_msm listed before the app that registers it) lists the action itself::

    from django_msm.admin import log_out_everywhere

    class UserAdmin(auth_admin.UserAdmin):
        actions = [log_out_everywhere]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import ngettext

from . import user_sessions
from .ops.cluster_page import REFRESH_SECONDS, page
from .ops.status import ClusterStatus, collect_status, to_dict

URL_NAME = "django_msm_cluster"
TITLE = "Session cluster"
CACHE_SECONDS = REFRESH_SECONDS - 1

# Process-global on purpose: every admin viewer of this process shares one recent status.
_recent: tuple[float, ClusterStatus] | None = None
_recent_lock = threading.Lock()


def recent_status() -> ClusterStatus:
    """The process's latest status, collected again when older than ``CACHE_SECONDS``."""
    global _recent
    with _recent_lock:  # one collection at a time; the other viewers wait for its result
        if _recent is None or time.monotonic() - _recent[0] >= CACHE_SECONDS:
            _recent = (time.monotonic(), collect_status())
        return _recent[1]


def forget_recent_status() -> None:
    """Drop the cached status (tests; a settings change)."""
    global _recent
    with _recent_lock:
        _recent = None


def cluster_view(site: AdminSite) -> Callable[[HttpRequest], HttpResponse]:
    """The page's view for ``site`` (its context: the site's header, side bar, user links)."""

    def view(request: HttpRequest) -> HttpResponse:
        status = recent_status()
        if request.GET.get("format") == "json":
            return JsonResponse(to_dict(status))
        body_only = request.GET.get("part") == "body"
        context = {
            **({} if body_only else site.each_context(request)),
            "title": TITLE,
            "page_url": reverse(f"{site.name}:{URL_NAME}"),
            **page(status),
        }
        template = "django_msm/cluster_body.html" if body_only else "django_msm/cluster.html"
        return TemplateResponse(request, template, context)

    return view


def _app_entry(site: AdminSite) -> dict[str, Any]:
    """The page as the admin index and side bar list apps (no model behind it)."""
    url = reverse(f"{site.name}:{URL_NAME}")
    return {
        "name": "Sessions (django_msm)",
        "app_label": "django_msm",
        "app_url": url,
        "has_module_perms": True,
        "models": [{
            "name": TITLE, "object_name": "Cluster", "admin_url": url, "add_url": None,
            "view_only": True, "perms": {"view": True},
        }],
    }


def install(site: AdminSite) -> None:
    """Add the cluster page to ``site``: its URL, and its entry on the index and side bar.

    Wraps the site's own ``get_urls`` and ``get_app_list``, so nothing else of the site changes;
    installing twice does nothing.
    """
    if getattr(site, "_django_msm_installed", False):
        return
    own_urls, own_app_list = site.get_urls, site.get_app_list

    def get_urls() -> list[URLPattern | URLResolver]:
        page_url = path("msm-cluster/", site.admin_view(cluster_view(site)), name=URL_NAME)
        return [page_url, *own_urls()]

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        listed = own_app_list(request, app_label)
        if app_label is None and site.has_permission(request):
            listed = [*listed, _app_entry(site)]
        return listed

    site.get_urls = get_urls  # type: ignore[method-assign]
    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._django_msm_installed = True  # type: ignore[attr-defined]



@admin.action(description="Log out everywhere", permissions=["change"])
def log_out_everywhere(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    """End every session of each selected user (the admin's own included, if selected)."""
    ended = sum(user_sessions.end_all(user) for user in queryset)
    modeladmin.message_user(
        request,
        ngettext("Ended %(count)d session.", "Ended %(count)d sessions.", ended)
        % {"count": ended},
        messages.SUCCESS,
    )


def add_user_action(site: admin.AdminSite | None = None) -> bool:
    """Add the action to the user model's admin on ``site``; False if none is registered yet."""
    from django.contrib.auth import get_user_model

    model_admin = (site or admin.site)._registry.get(get_user_model())
    if model_admin is None:
        return False
    actions = list(model_admin.actions or [])
    if log_out_everywhere not in actions:
        model_admin.actions = [*actions, log_out_everywhere]
    return True


if apps.is_installed("django.contrib.admin"):
    install(admin.site)
    add_user_action()  # the user admin of the apps listed before this one is registered by now
