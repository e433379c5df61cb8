"""In-place changes are saved, and a response works out `modified` once, on real memcached."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client, override_settings

from django_msm.session import SessionStore

pytestmark = pytest.mark.integration


@pytest.fixture
def settings_for(memcached_nodes):
    servers = memcached_nodes(2)
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": ",".join(s.spec for s in servers)},
        ROOT_URLCONF="tests.change_urls",
        MIDDLEWARE=["django_msm.middleware.SessionMiddleware"],
    )


def _client_with_cart(items):
    store = SessionStore()
    store["cart"] = list(items)
    store.save()
    client = Client()
    client.cookies["sessionid"] = store.session_key
    return client, store.session_key


def test_an_in_place_change_is_saved(settings_for):
    with settings_for:
        client, key = _client_with_cart(["apple"])
        client.get("/append/")
        assert SessionStore(key).load() == {"cart": ["apple", "pear"]}


def test_a_read_only_response_serializes_the_session_once(settings_for):
    with settings_for:
        client, key = _client_with_cart(["apple"])
        with mock.patch.object(SessionStore, "_serialize", autospec=True,
                               side_effect=SessionStore._serialize) as serialize:
            assert client.get("/read/").content == b"apple"
        assert serialize.call_count == 1  # our middleware settles it; Django's reuses it
        assert SessionStore(key).load() == {"cart": ["apple"]}
