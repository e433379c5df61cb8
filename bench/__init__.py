"""``make bench``: django_msm's per-request cost next to Django's ``cache`` engine and django-redis.

Run with ``python -m bench.run`` from the repository root; it writes ``docs/benchmarks.md`` and
``docs/bench-latency-by-size.png``. See ``bench/run.py``.
"""
