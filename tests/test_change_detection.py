"""In-place changes are saved, and a response works out `modified` once, on real memcached.

A value the serializer cannot encode (issue 12: a date appended in place, which pickle took)
never makes reading ``modified`` raise; ``save()`` raises ``SessionNotSerializable`` naming the
attribute, and the stored copy stays.
"""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from django.core.signing import JSONSerializer
from django.test import Client, override_settings

from django_msm.exceptions import MSMError, SessionNotSerializable
from django_msm.session import SessionStore
from tests.servers import raw_get

pytestmark = pytest.mark.integration


OURS = "django_msm.middleware.SessionMiddleware"
DJANGOS = "django.contrib.sessions.middleware.SessionMiddleware"


@pytest.fixture
def servers(memcached_nodes):
    return memcached_nodes(2)


@pytest.fixture
def settings_for(servers):
    return _settings(servers, OURS)


def _settings(servers, middleware):
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": ",".join(s.spec for s in servers)},
        ROOT_URLCONF="tests.change_urls",
        MIDDLEWARE=[middleware],
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


def test_a_read_only_response_never_serializes_the_whole_session(settings_for):
    """Only the values handed out are compared (issue 14): the cart, not the session."""
    with settings_for:
        client, key = _client_with_cart(["apple"])
        with mock.patch.object(SessionStore, "_serialize", autospec=True,
                               side_effect=SessionStore._serialize) as serialize:
            assert client.get("/read/").content == b"apple"
        assert serialize.call_count == 0
        assert SessionStore(key).load() == {"cart": ["apple"]}


@pytest.mark.parametrize("middleware", [OURS, DJANGOS])
@pytest.mark.parametrize(("path", "attribute"), [("/append-date/", "cart"), ("/set-date/", "d")])
def test_a_value_json_cannot_encode_fails_at_save_and_keeps_the_copy(
    servers, middleware, path, attribute
):
    with _settings(servers, middleware):
        client, key = _client_with_cart(["apple"])
        stored = [raw_get(server, name) for server in servers for name in (key, f"bak:{key}")]
        with pytest.raises(SessionNotSerializable) as info:
            client.get(path)
        error = info.value
        assert isinstance(error, MSMError) and error.attribute == attribute
        assert [entry.name for entry in info.traceback][-2:] == ["save", "_payload"]
        message = str(error)
        assert f"session attribute {attribute!r}" in message, message
        assert "Object of type date is not JSON serializable" in message, message
        assert key not in message and key[:32] not in message
        assert [raw_get(server, name) for server in servers
                for name in (key, f"bak:{key}")] == stored
        assert SessionStore(key).load() == {"cart": ["apple"]}
        assert client.get("/read/").content == b"apple"


def test_reading_modified_after_an_unencodable_in_place_change_is_true(settings_for):
    with settings_for:
        _, key = _client_with_cart(["apple"])
        store = SessionStore(key)
        store["cart"].append(mock.sentinel.unencodable)
        assert store.modified is True
        with pytest.raises(SessionNotSerializable) as info:
            store.save()
        assert info.value.attribute == "cart"
        assert SessionStore(key).load() == {"cart": ["apple"]}


def test_a_session_that_hands_out_only_strings_serializes_nothing(settings_for):
    with settings_for:
        store = SessionStore()
        store.update({"_auth_user_id": "7", "cart": ["apple"]})
        store.save()
        reader = SessionStore(store.session_key)
        with mock.patch.object(JSONSerializer, "dumps", autospec=True,
                               side_effect=JSONSerializer.dumps) as dumps:
            assert reader["_auth_user_id"] == "7"
            assert reader.get("missing") is None
            assert reader.modified is False
        assert dumps.call_count == 0


@pytest.mark.parametrize("hand_out", [
    lambda s: s["cart"], lambda s: s.get("cart"), lambda s: s.setdefault("cart", []),
    lambda s: dict(s.items())["cart"], lambda s: next(iter(s.values())),
])
def test_every_way_of_handing_out_a_value_is_watched(settings_for, hand_out):
    with settings_for:
        _client, key = _client_with_cart(["apple"])
        session = SessionStore(key)
        hand_out(session).append("pear")
        assert session.modified is True
        session.save()
        assert SessionStore(key).load() == {"cart": ["apple", "pear"]}


def test_a_change_after_an_explicit_save_is_still_seen(settings_for):
    with settings_for:
        _client, key = _client_with_cart(["apple"])
        session = SessionStore(key)
        cart = session["cart"]
        session.save()
        assert session.modified is False  # what was handed out equals what was written
        cart.append("pear")
        assert session.modified is True
        session.save()
        assert SessionStore(key).load() == {"cart": ["apple", "pear"]}


def test_async_twins_hand_out_watched_values(settings_for):
    async def append_through_aget(session):
        (await session.aget("cart")).append("pear")

    with settings_for:
        _client, key = _client_with_cart(["apple"])
        session = SessionStore(key)
        asyncio.run(append_through_aget(session))
        assert session.modified is True
