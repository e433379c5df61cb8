"""WSGI entry point: ``gunicorn tests.http_app.wsgi:application``.

Builds the in-memory database and the test user before the first request, so every instance has
the same user (same primary key, same password hash) and a login survives a move between them.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.http_app.settings")
application = get_wsgi_application()

# The tests count node commands; statistics publishing (every 5 s, at the end of a request)
# would add writes at random moments. Like tests/conftest.py, publishing is off unless asked.
if os.environ.get("MSM_PUBLISH") != "1":
    from django_msm.ops import publish

    publish.disconnect()


def _create_user() -> None:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from tests.http_app.views import PASSWORD, STAFF_PASSWORD, STAFF_USERNAME, USERNAME

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    # A fixed salt long enough (>= 128 bits) that a login never re-hashes the password with a
    # random one: the hash is part of the session (auth's session hash) on every instance.
    password = make_password(PASSWORD, salt="httpappfixedsaltsharedbyinstances")
    User.objects.create(pk=1, username=USERNAME, password=password)
    if os.environ.get("MSM_ADMIN") == "1":  # the admin's cluster page is for staff
        staff = make_password(STAFF_PASSWORD, salt="httpappfixedsaltsharedbyinstances")
        User.objects.create(pk=2, username=STAFF_USERNAME, password=staff, is_staff=True)


_create_user()
