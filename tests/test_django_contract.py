"""Django 5.2's own session contract, run from the Django sdist against django_msm.

``SessionTestsMixin`` (sync and async) and ``SessionMiddlewareTests`` are imported from the
sdist's ``tests/sessions_tests`` (fetched by ``make test``), never copied into this repository.
Two of the middleware tests hard-code Django's database engine; they are replaced by tests of the
same behaviour against this engine.
"""

from __future__ import annotations

import string
from unittest import mock

import sessions_tests.tests as django_session_tests
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpResponse
from django.test import SimpleTestCase, override_settings
from sessions_tests.tests import SessionMiddlewareTests, SessionTestsMixin

from django_msm import middleware as msm_middleware
from django_msm.session import SessionStore
from tests.cluster import ClusterMixin


class MsmSessionContractTests(ClusterMixin, SessionTestsMixin, SimpleTestCase):
    backend = SessionStore

    def test_load_overlong_key(self) -> None:
        self.session._session_key = (string.ascii_letters + string.digits) * 20
        self.assertEqual(self.session.load(), {})


@override_settings(USE_TZ=False)
class MsmSessionContractNaiveTimeTests(MsmSessionContractTests):
    """Django runs its suite with and without time zones; so do we."""


class MsmSingleNodeContractTests(MsmSessionContractTests):
    """One node: no backup copy, and the same contract."""

    node_count = 1


class MsmStickyContractTests(MsmSessionContractTests):
    """Sticky mode: process-local primary copies checked against the node's version."""

    msm_settings = {"STICKY": True}


class MsmDisabledContractTests(MsmSessionContractTests):
    """ENABLED=False: plain process-local sessions, no node touched."""

    msm_settings = {"ENABLED": False}


@override_settings(SESSION_ENGINE="django_msm.session")
class MsmSessionMiddlewareTests(ClusterMixin, SessionMiddlewareTests):
    def test_session_update_error_redirect(self) -> None:
        def view(request):  # type: ignore[no-untyped-def]
            request.session = SessionStore()
            request.session.save(must_create=True)
            request.session.delete()
            return HttpResponse()

        middleware = django_session_tests.SessionMiddleware(view)
        with self.assertRaises(SessionInterrupted):
            middleware(self.request_factory.get("/foo/"))

    def test_empty_session_saved(self) -> None:
        def view(request):  # type: ignore[no-untyped-def]
            request.session["foo"] = "bar"
            return HttpResponse("ok")

        request = self.request_factory.get("/")
        middleware = django_session_tests.SessionMiddleware(view)
        middleware(request)
        key = request.session.session_key
        del request.session["foo"]
        response = middleware.process_response(request, HttpResponse("ok"))
        self.assertEqual(SessionStore(key).load(), {})
        self.assertTrue(SessionStore(key).exists(key))
        self.assertIn(f"Set-Cookie: sessionid={key}", str(response.cookies))
        self.assertEqual(response.headers["Vary"], "Cookie")


class ProjectMiddlewareMixin:
    """Run Django's middleware tests with ``django_msm.middleware.SessionMiddleware``.

    Django's tests name ``SessionMiddleware`` at module level; the name is pointed at ours for
    the duration of each test.
    """

    def setUp(self) -> None:
        patcher = mock.patch.object(
            django_session_tests, "SessionMiddleware", msm_middleware.SessionMiddleware
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()  # type: ignore[misc]


class MsmProjectMiddlewareTests(ProjectMiddlewareMixin, MsmSessionMiddlewareTests):
    def test_middleware_under_test_is_ours(self) -> None:
        self.assertIs(django_session_tests.SessionMiddleware, msm_middleware.SessionMiddleware)


class MsmProjectMiddlewareStickyTests(MsmProjectMiddlewareTests):
    msm_settings = {"STICKY": True}


# Only the subclasses above are tests here; Django's own classes must not be collected again.
del SessionTestsMixin, SessionMiddlewareTests
