"""SESSION_ATTRIBUTE_FILTER and ENABLE_STATISTICS, against real memcached."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_msm.core.stats import statistics
from django_msm.session import SessionStore

pytestmark = pytest.mark.integration


def _msm(servers, **extra):
    msm = {"MEMCACHED_NODES": ",".join(s.spec for s in servers), **extra}
    return override_settings(DJANGO_MSM=msm)


def test_attribute_filter_stores_matching_keys_and_djangos_own(memcached_nodes):
    with _msm(memcached_nodes(2), SESSION_ATTRIBUTE_FILTER="cart|user_.*"):
        store = SessionStore()
        store.update({"cart": [1], "user_name": "ann", "scratch": "big", "_auth_user_id": "7"})
        store.save()
        assert SessionStore(store.session_key).load() == {
            "cart": [1], "user_name": "ann", "_auth_user_id": "7"
        }


def test_changing_only_filtered_out_keys_writes_nothing(memcached_nodes):
    with _msm(memcached_nodes(2), SESSION_ATTRIBUTE_FILTER="cart"):
        store = SessionStore()
        store["cart"] = [1]
        store.save()
        again = SessionStore(store.session_key)
        again["scratch"] = "not stored"
        before = statistics.snapshot()["counters"].get("saves", 0)
        again.save()
        assert statistics.snapshot()["counters"].get("saves", 0) == before


def test_statistics_can_be_switched_off(memcached_nodes):
    servers = memcached_nodes(2)
    with _msm(servers, ENABLE_STATISTICS=False):
        before = statistics.snapshot()
        store = SessionStore()
        store["a"] = 1
        store.save()
        SessionStore(store.session_key).load()
        assert statistics.snapshot() == before
    with _msm(servers):
        store = SessionStore()
        store["a"] = 1
        store.save()
        assert statistics.snapshot()["counters"]["creates"] >= 1
