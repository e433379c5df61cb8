"""Settings of the test app, read from the environment of each app process.

``MSM_NODES``     MEMCACHED_NODES (required unless ``MSM_ENABLED=0``)
``MSM_ROUTE``     ROUTE; empty or unset: no route
``MSM_STICKY``    ``1`` for STICKY=True
``MSM_FAILOVER``  FAILOVER_NODES
``MSM_IGNORE``    REQUEST_URI_IGNORE_PATTERN
``MSM_ENABLED``   ``0`` for ENABLED=False
``MSM_INSTANCE``  this instance's name, echoed by every view
``MSM_RETRY_TIMEOUT`` / ``MSM_OPERATION_TIMEOUT``  failover knobs (seconds)
``MSM_BACKUP_TIMEOUT``  SESSION_BACKUP_TIMEOUT (seconds; default 0.1)
``MSM_LOCKING``   LOCKING_MODE (default ``none``)
``MSM_LOCK_EXPIRATION`` / ``MSM_LOCK_WAIT``  LOCK_EXPIRATION / LOCK_WAIT_TIMEOUT (seconds)
``MSM_LOCK_POLICY``  LOCK_TIMEOUT_POLICY (default ``fail``)
``MSM_ADMIN``     ``1``: the Django admin at /admin/ with django_msm's cluster page, static files
                  served by the app itself, and a staff user (tests/test_admin_cluster.py)

The SECRET_KEY and the user's password hash are the same in every instance on purpose: a login
made on one instance must be valid on the others, as in a real cluster.
"""

import os

INSTANCE = os.environ.get("MSM_INSTANCE", "app")

SECRET_KEY = "django_msm-http-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_msm",
]
# In memory: each process builds its own copy of the same user at startup (wsgi.py).
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Fast and deterministic with a fixed salt (wsgi.py): test data, not a password store.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MIDDLEWARE = [
    "django_msm.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.http_app.urls"
SESSION_ENGINE = "django_msm.session"


def _msm_settings() -> dict[str, object]:
    env = os.environ
    msm: dict[str, object] = {
        "MEMCACHED_NODES": env.get("MSM_NODES", "127.0.0.1:11211"),
        "FAILOVER_NODES": env.get("MSM_FAILOVER", ""),
        "STICKY": env.get("MSM_STICKY", "0") == "1",
        "ROUTE": env.get("MSM_ROUTE") or None,
        "REQUEST_URI_IGNORE_PATTERN": env.get("MSM_IGNORE") or None,
        "ENABLED": env.get("MSM_ENABLED", "1") == "1",
        "OPERATION_TIMEOUT": float(env.get("MSM_OPERATION_TIMEOUT", "0.5")),
        "RETRY_TIMEOUT": float(env.get("MSM_RETRY_TIMEOUT", "0.5")),
        "LOCKING_MODE": env.get("MSM_LOCKING", "none"),
        "LOCK_TIMEOUT_POLICY": env.get("MSM_LOCK_POLICY", "fail"),
    }
    if env.get("MSM_BACKUP_TIMEOUT"):
        msm["SESSION_BACKUP_TIMEOUT"] = float(env["MSM_BACKUP_TIMEOUT"])
    if env.get("MSM_LOCK_EXPIRATION"):
        msm["LOCK_EXPIRATION"] = float(env["MSM_LOCK_EXPIRATION"])
    if env.get("MSM_LOCK_WAIT"):
        msm["LOCK_WAIT_TIMEOUT"] = float(env["MSM_LOCK_WAIT"])
    return msm


DJANGO_MSM = _msm_settings()

if os.environ.get("MSM_ADMIN") == "1":
    INSTALLED_APPS += [
        "django.contrib.admin", "django.contrib.messages", "django.contrib.staticfiles",
    ]
    MIDDLEWARE += ["django.contrib.messages.middleware.MessageMiddleware"]
    ROOT_URLCONF = "tests.http_app.admin_urls"
    STATIC_URL = "/static/"
    TEMPLATES = [{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_msm": {"handlers": ["stderr"], "level": "INFO"},
        # A 500's traceback in the instance's log (DEBUG is off, so Django would print none).
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
