"""Settings for the test suite; tests point DJANGO_MSM at the real servers they start."""

import os
import sys
from pathlib import Path

import django


def _django_test_tree() -> Path:
    """The ``tests/`` folder of the Django sdist matching the installed Django.

    ``make test`` downloads it (scripts/fetch-django-tests); Django's session tests run from
    there and are never copied into this repository.
    """
    version = django.get_version()
    default = Path(__file__).resolve().parent.parent / ".cache" / f"django-{version}" / "tests"
    path = Path(os.environ.get("DJANGO_TESTS_DIR", default))
    if not (path / "sessions_tests").is_dir():
        raise RuntimeError(
            f"Django's test tree for {version} is missing at {path}; "
            "run `make test` or scripts/fetch-django-tests"
        )
    return path


sys.path.insert(0, str(_django_test_tree()))

SECRET_KEY = "django_msm-tests-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django_msm",
    "sessions_tests",  # from the Django sdist (conftest puts its tests/ on sys.path)
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django_msm.session"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"
DJANGO_MSM = {"MEMCACHED_NODES": "n1:127.0.0.1:1,n2:127.0.0.1:2", "OPERATION_TIMEOUT": 0.5}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
