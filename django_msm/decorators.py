"""Per-view locking overrides: ``@session_lock`` and ``@session_readonly``.

They mark the view function; ``django_msm.middleware.SessionMiddleware`` reads the mark in
``process_view``, before the view runs, and it wins over ``LOCKING_MODE``. For class-based
views, decorate the result of ``as_view()``::

    path("cart/add/", session_lock(views.add_to_cart)),
    path("report/", session_readonly(ReportView.as_view())),
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

View = TypeVar("View", bound=Callable[..., object])


def session_lock(view: View) -> View:
    """Always lock the session for this view, whatever LOCKING_MODE says."""
    view.msm_lock = True  # type: ignore[attr-defined]
    return view


def session_readonly(view: View) -> View:
    """Never lock the session for this view (it must not modify the session)."""
    view.msm_lock = False  # type: ignore[attr-defined]
    return view
