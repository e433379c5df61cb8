"""OrjsonSerializer: exact round trips, Django's JSONSerializer wherever orjson would not be exact,
and sessions written before the switch still read; then the whole engine on it, on memcached."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.core.signing import JSONSerializer
from django.test import override_settings

from django_msm.serializers import OrjsonSerializer
from django_msm.session import SessionStore

SESSION = {
    "_auth_user_id": "4217",
    "cart": [{"sku": "BK-1042", "qty": 1, "price": "24.90"}, {"sku": "MG-0007", "qty": 2}],
    "name": "Zoë – 東京",
    "ratio": 0.1,
    "flags": [True, False, None],
    "nested": {"a": {"b": [1, -2, 2**63 - 1, -(2**63)]}},
}


def test_round_trip_is_exact_and_marked() -> None:
    data = OrjsonSerializer().dumps(SESSION)
    assert data[:1] == b" " and data[1:2] == b"{"
    assert OrjsonSerializer().loads(data) == SESSION


def test_sessions_written_by_django_serializer_still_read() -> None:
    assert OrjsonSerializer().loads(JSONSerializer().dumps(SESSION)) == SESSION


@pytest.mark.parametrize("value", [
    {"big": 2**70},  # orjson refuses to write it, and would read it back as a float
    {"big": -(2**64)},
    {1: "int key"},  # Django's serializer turns it into "1"
])
def test_values_orjson_would_not_keep_exactly_go_through_django(value: dict) -> None:
    data = OrjsonSerializer().dumps(value)
    assert data == JSONSerializer().dumps(value)  # Django's bytes, unmarked
    # repr, not ==: 2**70 == float(2**70), but a float would be a changed session
    assert repr(OrjsonSerializer().loads(data)) == repr(JSONSerializer().loads(data))


@pytest.mark.parametrize("value", [datetime.datetime(2024, 1, 1), decimal.Decimal("1.5"), {1, 2}])
def test_what_django_rejects_is_rejected(value: object) -> None:
    with pytest.raises(TypeError):
        JSONSerializer().dumps({"x": value})
    with pytest.raises(TypeError):
        OrjsonSerializer().dumps({"x": value})


@pytest.mark.integration
def test_the_engine_on_orjson(memcached_nodes) -> None:
    servers = memcached_nodes(2)
    with override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": ",".join(s.spec for s in servers)},
        SESSION_SERIALIZER="django_msm.serializers.OrjsonSerializer",
    ):
        store = SessionStore()
        store.update(SESSION)
        store.save()
        reader = SessionStore(store.session_key)
        assert dict(reader.items()) == SESSION
        reader["cart"].append({"sku": "TS-3310-L"})  # changed in place: seen and saved
        assert reader.modified is True
        reader.save()
        assert SessionStore(store.session_key).load()["cart"][-1] == {"sku": "TS-3310-L"}
