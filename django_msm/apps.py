from django.apps import AppConfig, apps


class DjangoMsmConfig(AppConfig):
    """Register the checks, the settings receiver, the statistics publisher, and the per-user
    sessions' hooks (the password-change receiver, the user admin's action)."""

    name = "django_msm"
    verbose_name = "memcached session manager"

    def ready(self) -> None:
        from . import checks, runtime  # noqa: F401  (checks and the setting_changed receiver)
        from .ops import publish

        # App processes publish their statistics for msm_status at the end of requests.
        publish.connect()
        if apps.is_installed("django.contrib.auth"):
            from django.conf import settings
            from django.db.models.signals import post_save

            from .user_sessions import end_on_password_change

            post_save.connect(
                end_on_password_change, sender=settings.AUTH_USER_MODEL,
                dispatch_uid="django_msm.end_on_password_change",
            )
        if apps.is_installed("django.contrib.admin") and apps.is_installed("django.contrib.auth"):
            _add_admin_action()


def _add_admin_action() -> None:
    """Add "Log out everywhere" to the user admin if the admin has discovered it already (the
    admin app listed before this one); else ``django_msm.admin`` adds it when the admin's
    autodiscovery imports it, after the user admin of the apps listed before this one."""
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    if get_user_model() in admin.site._registry:
        from .admin import add_user_action

        add_user_action()
