"""Issue 12, item 3: a relocation's forward is signed; a forged or malformed one is a miss.

The forward (where a relocated key's session went) is the payload of the tombstone the
relocation leaves at the old key's witness, inside the HMAC-signed envelope. The unsigned
``fwd:<key>`` items of earlier versions are never read. Each hostile forward below is planted
with a raw memcached client behind the engine's back, on a key whose copies are gone; the
request carrying that key must get an empty session (a miss), no exception and never the other
user's session. The ones that reach a reader are logged.
"""

from __future__ import annotations

import logging

import pytest

from django_msm.core.envelope import Copy, Kind, pack
from django_msm.runtime import get_config
from tests.servers import MemcachedProcess, raw_client
from tests.visitors import Visitor, msm_settings, new_visitors, node_of

pytestmark = pytest.mark.integration
TTL = 600


def plant(nodes: list[MemcachedProcess], victim: str, items: dict[str, bytes]) -> None:
    """Remove every copy of ``victim``'s session, then store ``items`` on every node."""
    for node in nodes:
        with raw_client(node) as client:
            client.delete(victim, noreply=False)  # answered: done before the next request
            client.delete(f"bak:{victim}", noreply=False)
            for key, value in items.items():
                client.set(key, value, expire=TTL, noreply=False)


def tombstone(payload: bytes, signing_key: bytes) -> bytes:
    now = 1_700_000_000.0
    return pack(Copy(Kind.TOMBSTONE, 9, now, now + TTL, payload), signing_key, 1 << 30)


def forgeries(target: str) -> dict[str, tuple[str, bytes, str | None]]:
    """name -> (item key form, value, what the log says); ``{}`` in a key is the victim's."""
    secret = get_config().signing_keys[0]
    return {
        "forged tombstone": ("bak:{}", tombstone(target.encode(), b"not the secret" * 3),
                             "failed its signature"),
        "non-ASCII signed tombstone": ("bak:{}", tombstone("é→".encode() + b"\xff", secret),
                                       "names no session key"),
        "signed tombstone naming no key": ("bak:{}", tombstone(b"../etc", secret),
                                           "names no session key"),
        "legacy plain forward": ("fwd:{}", target.encode(), None),
        "legacy non-ASCII forward": ("fwd:{}", b"\xff\xfe" + target.encode(), None),
    }


@pytest.mark.parametrize("name", list(forgeries("x" * 32 + "-n1")))
def test_a_hostile_forward_is_a_miss_and_never_a_switch(
    memcached_nodes, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    nodes = memcached_nodes(3)
    with msm_settings(nodes):
        victim, other = new_visitors("v", 2)
        target = other.key
        assert victim.key is not None and target is not None
        form, value, logged = forgeries(target)[name]
        plant(nodes, victim.key, {form.format(victim.key): value})
        replay = Visitor("replay")
        replay.client.cookies["sessionid"] = victim.key
        with caplog.at_level(logging.WARNING, logger="django_msm"):
            assert replay.read() == {}  # a miss: no exception (200), nobody's data
        assert replay.key in (None, victim.key) and replay.key != target
        other.check_read()  # the other user's session is untouched
        messages = " | ".join(record.getMessage() for record in caplog.records)
        if logged is not None:
            assert logged in messages, messages
        assert victim.key not in messages and target not in messages  # credentials


def test_a_signed_forward_is_followed(memcached_nodes) -> None:
    """The control: the same planting with a genuine forward leads to the session."""
    nodes = memcached_nodes(3)
    with msm_settings(nodes):
        victim, other = new_visitors("v", 2)
        target = other.key
        assert victim.key is not None and target is not None
        witness = nodes[(int(node_of(victim.key)[1:]) % 3)]  # the node after the home
        plant(nodes, victim.key, {})
        with raw_client(witness) as client:
            value = tombstone(target.encode(), get_config().signing_keys[0])
            client.set(f"bak:{victim.key}", value, expire=TTL, noreply=False)
        replay = Visitor("replay")
        replay.client.cookies["sessionid"] = victim.key
        assert replay.read() == other.expected()
        assert replay.key == target
