"""Settings of the demo shop, driven by environment variables so one code base runs as every
instance of the demo cluster (``demo/cluster.py`` sets them):

* ``MSM_DEMO_INSTANCE``: this app instance's name, shown on every page (and its route when sticky);
* ``MSM_DEMO_NODES``: ``MEMCACHED_NODES`` of django_msm;
* ``MSM_DEMO_MODE``: ``non-sticky`` (default) or ``sticky``;
* ``MSM_DEMO_DB``: the SQLite file shared by the instances (it holds the demo user, not sessions).

For the chaos harness (``chaos/``), optional:

* ``MSM_DEMO_ENGINE``: ``msm`` (default) or a peer, ``cache``, ``cached_db``, ``django-redis``
  (``engines.py``), on the same nodes;
* ``MSM_DEMO_LOCKING``: django_msm's ``LOCKING_MODE`` (with the project's middleware).
* ``MSM_DEMO_MIDDLEWARE``: ``msm`` for django_msm's middleware in every mode.
"""

import os
from pathlib import Path

from testproject import engines

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE = os.environ.get("MSM_DEMO_INSTANCE", "dev")
MODE = os.environ.get("MSM_DEMO_MODE", "non-sticky")

# Every instance must sign sessions with the same key; this one guards a loopback-only demo.
SECRET_KEY = "django_msm-demo-shop-not-a-secret"
DEBUG = os.environ.get("MSM_DEMO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",  # /admin/, where the demo user (a superuser) can look around
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.messages",
    "django_msm",
    "shop",
]

SESSION_ENGINE = "django_msm.session"
DJANGO_MSM = {
    "MEMCACHED_NODES": os.environ.get("MSM_DEMO_NODES", "n1:127.0.0.1:11211,n2:127.0.0.1:11212"),
    "OPERATION_TIMEOUT": 0.5,
    "RETRY_TIMEOUT": 1.0,
}
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
if MODE == "sticky":
    # Sticky mode keeps the primary copy in the app process and appends the route to keys.
    DJANGO_MSM.update({"STICKY": True, "ROUTE": INSTANCE})
    SESSION_MIDDLEWARE = "django_msm.middleware.SessionMiddleware"
if os.environ.get("MSM_DEMO_LOCKING"):
    # Generous wait: a request queued behind one that waits out a hung node must not give up.
    DJANGO_MSM.update({"LOCKING_MODE": os.environ["MSM_DEMO_LOCKING"]})
    SESSION_MIDDLEWARE = "django_msm.middleware.SessionMiddleware"
if os.environ.get("MSM_DEMO_MIDDLEWARE") == "msm":
    # django_msm's middleware in every mode: it records user agents for the sessions page.
    SESSION_MIDDLEWARE = "django_msm.middleware.SessionMiddleware"
ENGINE = os.environ.get("MSM_DEMO_ENGINE", "msm")
if ENGINE in engines.PEER_ENGINES:
    # A peer stores the sessions; django_msm stays out (its statistics publisher would touch
    # the nodes too).
    INSTALLED_APPS.remove("django_msm")
    SESSION_ENGINE = engines.SESSION_ENGINES[ENGINE]
    CACHES = engines.peer_caches(ENGINE, DJANGO_MSM["MEMCACHED_NODES"])
    if ENGINE == "cached_db":
        INSTALLED_APPS.append("django.contrib.sessions")

MIDDLEWARE = [
    SESSION_MIDDLEWARE,
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # Outside the source tree by default (.cache/ is ignored by git).
        "NAME": os.environ.get("MSM_DEMO_DB", str(BASE_DIR.parent / ".cache" / "demo.sqlite3")),
        "OPTIONS": {"timeout": 10},
    }
}
if ENGINE == "cached_db":
    # Both instances write sessions to this file: WAL and IMMEDIATE transactions let writers
    # queue for the lock instead of failing on a read-to-write upgrade.
    DATABASES["default"]["OPTIONS"].update(
        {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"instance": {"format": f"[{INSTANCE}] %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "instance"}},
    "loggers": {"django_msm": {"handlers": ["stderr"], "level": "INFO"}},
}
