from django.apps import AppConfig


class DjangoMsmConfig(AppConfig):
    """Register the system checks and the settings receiver; nothing else runs at import time."""

    name = "django_msm"
    verbose_name = "memcached session manager"

    def ready(self) -> None:
        from . import checks, conf  # noqa: F401  (registers checks and the setting_changed receiver)
