"""Issue 12: a save the witness refuses answers 503 and stores nothing, on real memcached.

Another request changes or moves the session while this one runs; here it is a second
``SessionStore`` used inside the view, so the interleaving is exact. With locking (a request
that wanted its lock is fenced strictly) a change meanwhile refuses the save; without locking
the last writer wins. A move meanwhile refuses the save in every mode, and the 503 carries the
new key's cookie, so the retry lands on the session's current key.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from django_msm.session import SessionStore
from tests.servers import MemcachedProcess, raw_client
from tests.visitors import node_of

pytestmark = pytest.mark.integration


def changed_meanwhile(request: HttpRequest) -> HttpResponse:
    """Read n; another request stores n=100 before this one adds 1 to what it read."""
    seen = request.session["n"]
    other = SessionStore(request.session.session_key)
    other["n"] = 100
    other.save()
    request.session["n"] = seen + 1
    return HttpResponse(str(seen + 1))


def moved_meanwhile(request: HttpRequest) -> HttpResponse:
    """Read n; another request finds the home copy gone and moves the session (n=100)."""
    seen = request.session["n"]
    key = request.session.session_key
    node = next(n for n in NODES if n.node_id == node_of(key))
    with raw_client(node) as client:
        client.delete(key, noreply=False)  # the home restarted empty, as the other saw it
    other = SessionStore(key)
    other["n"] = 100
    other.save()
    assert other.session_key != key
    request.session["n"] = seen + 1
    return HttpResponse(str(seen + 1))


urlpatterns = [path("changed/", changed_meanwhile), path("moved/", moved_meanwhile)]
NODES: list[MemcachedProcess] = []


def serve(nodes: list[MemcachedProcess], locking: str) -> override_settings:
    NODES[:] = nodes
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": ",".join(n.spec for n in nodes), "LOCKING_MODE": locking},
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django_msm.middleware.SessionMiddleware"],
    )


def session_with_n() -> str:
    store = SessionStore()
    store["n"] = 1
    store.save()
    assert store.session_key is not None
    return store.session_key


def get(path_: str, key: str) -> tuple[int, str, str | None, str | None]:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    response = client.get(path_)
    cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
    return (response.status_code, response.content.decode(), response.get("Retry-After"),
            None if cookie is None else cookie.value)


def test_a_locked_save_over_a_change_it_never_saw_is_refused(memcached_nodes) -> None:
    with serve(memcached_nodes(3), "all"):
        key = session_with_n()
        status, _, retry, cookie = get("/changed/", key)
        assert (status, retry, cookie) == (503, "1", None)
        assert SessionStore(key).load() == {"n": 100}  # the other request's change stands


def test_an_unlocked_save_is_the_last_writer_and_wins(memcached_nodes) -> None:
    with serve(memcached_nodes(3), "none"):
        key = session_with_n()
        status, body, _, _ = get("/changed/", key)
        assert (status, body) == (200, "2")
        assert SessionStore(key).load() == {"n": 2}


@pytest.mark.parametrize("locking", ["all", "none"])
def test_a_save_after_a_move_is_refused_with_the_new_key(memcached_nodes, locking) -> None:
    with serve(memcached_nodes(3), locking):
        key = session_with_n()
        status, _, retry, cookie = get("/moved/", key)
        assert (status, retry) == (503, "1")
        assert cookie is not None and cookie != key and node_of(cookie) is not None
        assert SessionStore(cookie).load() == {"n": 100}  # the move's copy, untouched
        store = SessionStore(key)
        assert store.load() == {"n": 100} and store.session_key == cookie  # the forward
