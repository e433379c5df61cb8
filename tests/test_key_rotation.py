"""Issue 12: ``SECRET_KEY`` rotation loses no session that was used in between.

The README's procedure: move the old secret to ``SECRET_KEY_FALLBACKS``, wait at least
``SESSION_COOKIE_AGE``, remove it. A copy verified with the fallback is re-signed with the new key
when it is read (both copies, compare-and-set on the version read, so a concurrent save wins).
Real memcached nodes, Django's test client through the stock middleware.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock
from django_msm.core.cluster import Cluster
from django_msm.core.envelope import pack, unpack
from django_msm.core.keys import new_id
from django_msm.core.nodes import Node
from django_msm.exceptions import CorruptCopy
from django_msm.runtime import get_config
from django_msm.stores.memory import InMemoryStore
from tests.servers import MemcachedProcess, raw_get
from tests.visitors import msm_settings, new_visitors, node_of

OLD, NEW = "the old secret, leaked", "the new secret"


@contextmanager
def secrets(nodes: list[MemcachedProcess], key: str, *fallbacks: str) -> Iterator[None]:
    with msm_settings(nodes), override_settings(SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks):
        yield


def stored_copies(nodes: list[MemcachedProcess], key: str) -> list[bytes | None]:
    """The primary and the backup copy, read behind the engine's back (two nodes)."""
    primary = next(node for node in nodes if node.node_id == node_of(key))
    backup = next(node for node in nodes if node is not primary)
    return [raw_get(primary, key), raw_get(backup, f"bak:{key}")]


@pytest.mark.integration
def test_sessions_read_after_a_rotation_survive_the_removal_of_the_fallback(memcached_nodes):
    nodes = memcached_nodes(2)
    with secrets(nodes, OLD):
        users = new_visitors("user", 40)
        idle = new_visitors("idle", 10)  # not seen between the rotation and the removal
        for user in users[:20]:
            user.check_visit()

    with secrets(nodes, NEW, OLD):
        for user in users:
            user.check_read()  # a read-only request: nothing is saved, yet the copies are
        current = get_config().signing_keys[:1]
        for user in users:
            for data in stored_copies(nodes, user.key):
                assert data is not None and unpack(data, current).signed_with == 0
        for user in idle:
            with pytest.raises(CorruptCopy):
                unpack(stored_copies(nodes, user.key)[0], current)

    with secrets(nodes, NEW):
        for user in users:
            user.check_read()
            user.check_visit()
        assert [user.relocations for user in users] == [0] * len(users)
        # The control: sessions nobody used since the rotation are gone with the fallback.
        assert [user.read() for user in idle] == [{}] * len(idle)


@pytest.mark.integration
def test_the_backup_copy_is_re_signed_too(memcached_nodes):
    """The primary node dies after the fallback was removed: the backup copy still verifies."""
    nodes = memcached_nodes(2)
    with secrets(nodes, OLD):
        (user,) = new_visitors("user", 1)
    with secrets(nodes, NEW, OLD):
        user.check_read()
    with secrets(nodes, NEW):
        next(node for node in nodes if node.node_id == node_of(user.key)).kill()
        user.check_read()
        user.check_visit()
        assert user.relocations == 1


class SaveInBetween(InMemoryStore):
    """A node on which another request saves right after this one read (the race to lose)."""

    other_save: bytes | None = None

    def get_versioned(self, key: str) -> tuple[bytes | None, bytes | None]:
        read = super().get_versioned(key)
        if self.other_save is not None:
            self.set(key, self.other_save, 3600)
            self.other_save = None
        return read


def test_a_save_that_lands_meanwhile_wins_over_the_re_sign():
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        config = get_config()
    clock = FakeClock()
    nodes = [Node(f"n{i}", config.nodes[0].kind, f"10.0.0.{i}:11211") for i in (1, 2)]
    stores = {node: SaveInBetween(node, clock) for node in nodes}
    cluster = Cluster(replace(config, nodes=tuple(nodes)), clock, stores)
    sid = new_id("n1")
    new_key, old_key = config.signing_keys
    copy = cluster.copies.new_copy(b'{"n":1}', 3600, revision=1)
    later = cluster.copies.new_copy(b'{"n":2}', 3600, revision=2)
    primary, backup = stores[nodes[0]], stores[nodes[1]]
    primary.set(cluster.keys.primary(sid), pack(copy, old_key, 4096), 3600)
    backup.set(cluster.keys.backup(sid), pack(copy, old_key, 4096), 3600)
    primary.other_save = backup.other_save = pack(later, new_key, 4096)

    assert cluster.rotation.resign(sid, nodes[0]) is None
    for store, key in ((primary, cluster.keys.primary(sid)), (backup, cluster.keys.backup(sid))):
        data = store.get(key)
        assert data is not None and unpack(data, (new_key,)) == later
    cluster.close()
