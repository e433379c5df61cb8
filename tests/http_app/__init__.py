"""A minimal Django project that the HTTP integration tests run under gunicorn, one per instance.

Everything that differs between instances comes from environment variables (``settings.py``), so
``tests/appservers.py`` can start several real app processes with different routes, nodes and
modes from one code base.
"""
