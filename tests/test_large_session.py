"""Issue 2: a too-large session fails loudly and destroys nothing (peers.md finding 4).

With Django's memcached cache a session over 1 MB fails to save *and* the stored copy is gone
afterwards. Here ``save()`` raises ``SessionTooLarge`` before anything is written, and the copy
the user had, on the primary and on the backup node, still loads.
"""

from __future__ import annotations

import base64
import os

import pytest

from django_msm.exceptions import SessionTooLarge
from django_msm.session import SessionStore
from tests.servers import raw_get
from tests.visitors import Visitor, msm_settings, node_of

pytestmark = pytest.mark.integration

BIG = 1_500_000  # characters of base64 text from random bytes: ~1.1 MB even after zlib


def assert_names_size_and_limit(error: SessionTooLarge) -> None:
    message = str(error)
    assert error.size > error.limit, (error.size, error.limit)
    assert error.size > 1_000_000  # random base64 does not compress below ~3/4 of its length
    assert str(error.size) in message and str(error.limit) in message, message


def test_too_large_session_raises_and_the_stored_copies_survive(memcached_nodes) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes, RETRY_TIMEOUT=1.0):
        user = Visitor("heavy")
        user.check_visit()
        user.check_visit()
        key = user.key
        primary = next(node for node in nodes if node.node_id == node_of(key))
        backup = nodes[(nodes.index(primary) + 1) % len(nodes)]
        stored = (raw_get(primary, key), raw_get(backup, f"bak:{key}"))
        assert None not in stored

        with pytest.raises(SessionTooLarge) as caught:
            user.request("/big/", size=BIG)
        assert_names_size_and_limit(caught.value)
        assert user.key == key
        assert (raw_get(primary, key), raw_get(backup, f"bak:{key}")) == stored

        user.check_read()  # the previous copy, from the primary
        primary.kill()
        user.check_read()  # and from the backup
        user.check_visit()  # and the session goes on, relocated off the dead node
        assert node_of(user.key) != primary.node_id


def test_save_of_a_too_large_store_raises_and_keeps_the_previous_copy(memcached_nodes) -> None:
    nodes = memcached_nodes(2)
    with msm_settings(nodes):
        store = SessionStore()
        store["cart"] = ["apple"]
        store.save()
        key = store.session_key

        store["blob"] = base64.b64encode(os.urandom(BIG * 3 // 4)).decode()
        with pytest.raises(SessionTooLarge) as caught:
            store.save()
        assert_names_size_and_limit(caught.value)
        assert SessionStore(key).load() == {"cart": ["apple"]}

        fresh = SessionStore()
        fresh["blob"] = base64.b64encode(os.urandom(BIG * 3 // 4)).decode()
        with pytest.raises(SessionTooLarge):
            fresh.save()  # a new session too: nothing is created
        assert fresh.session_key is None
