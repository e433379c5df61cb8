"""Create the demo user, so that a fresh ``migrate`` is all the demo needs. It is a superuser,
so that the visitor can open the admin (and its django_msm pages) with the same login."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # printed on the login page: this site only ever listens on loopback


def create_demo_user(apps, schema_editor):
    user_model = apps.get_model("auth", "User")
    user_model.objects.update_or_create(
        username=DEMO_USERNAME,
        defaults={"password": make_password(DEMO_PASSWORD), "first_name": "Demo",
                  "is_staff": True, "is_superuser": True},
    )


def remove_demo_user(apps, schema_editor):
    apps.get_model("auth", "User").objects.filter(username=DEMO_USERNAME).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_demo_user, remove_demo_user)]
