import os

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # make demo: tell the narrator what django_msm did (a peer engine has nothing to tell).
        path = os.environ.get("MSM_DEMO_EVENTS")
        if path and os.environ.get("MSM_DEMO_ENGINE", "msm") == "msm":
            from . import narration

            narration.install(path)
