"""The "Log out everywhere" action for the user admin (issue 15).

``DjangoMsmConfig.ready()`` adds it to the model admin the site registered for the user model,
whatever class that is; a site whose user admin is registered later (django_msm listed before
the app that registers it) lists the action itself::

    from django_msm.admin import log_out_everywhere

    class UserAdmin(auth_admin.UserAdmin):
        actions = [log_out_everywhere]
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from . import user_sessions


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
    add_user_action()  # the user admin of the apps listed before this one is registered by now
