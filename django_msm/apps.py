from django.apps import AppConfig


class DjangoMsmConfig(AppConfig):
    """Register the checks, the settings receiver and the statistics publisher."""

    name = "django_msm"
    verbose_name = "memcached session manager"

    def ready(self) -> None:
        from . import checks, runtime  # noqa: F401  (checks and the setting_changed receiver)
        from .ops import publish

        # App processes publish their statistics for msm_status at the end of requests.
        publish.connect()
