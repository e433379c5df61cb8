"""``make bench``: django_msm's per-request cost next to Django's own ``cache`` session engine.

Run with ``python -m bench.run`` from the repository root; see ``bench/run.py``.
"""
