"""Simulated users for the in-process integration tests, and the checks made on them.

A ``Visitor`` is a ``django.test.Client`` carrying its own session cookie through Django's stock
``SessionMiddleware`` to the views in ``tests/views.py``. Each user's data is distinct (a counter
and a list of tagged visits), so "intact" means "exactly what this user wrote", never "some
session came back". The helpers work on memcached and Redis nodes alike: they only need a node's
``spec`` and ``node_id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from django.conf import settings
from django.test import Client, override_settings

from django_msm.core import keys as msm_keys
from django_msm.session import SessionStore


class Node(Protocol):
    """What the helpers need of a started node, of any kind."""

    node_id: str

    @property
    def spec(self) -> str: ...


def msm_settings(nodes: Sequence[Node], **extra: Any) -> override_settings:
    """Point DJANGO_MSM at ``nodes`` (in this order); a settings change resets the registry."""
    spec = ",".join(node.spec for node in nodes)
    return override_settings(
        DJANGO_MSM={"MEMCACHED_NODES": spec, "OPERATION_TIMEOUT": 0.5, **extra}
    )


def node_of(key: str | None) -> str | None:
    """The node id a session key names (None for no key or a malformed one)."""
    sid = msm_keys.parse(key)
    return None if sid is None else sid.node_id


class Visitor:
    """One simulated user: a test Client with its session cookie and every key it was given."""

    def __init__(self, tag: str):
        self.tag = tag
        self.client = Client()
        self.visits = 0
        self.keys: list[str] = []
        self.durations: list[tuple[float, float]] = []  # (start, seconds) per request

    @property
    def key(self) -> str | None:
        morsel = self.client.cookies.get(settings.SESSION_COOKIE_NAME)
        return None if morsel is None or not morsel.value else morsel.value

    @property
    def relocations(self) -> int:
        return len(self.keys) - 1

    def request(self, path: str, **params: Any) -> dict[str, Any]:
        """GET ``path`` and return the session as the view saw it; record key changes."""
        start = time.perf_counter()
        response = self.client.get(path, params)
        self.durations.append((start, time.perf_counter() - start))
        assert response.status_code == 200, response.content[:300]
        if self.key is not None and (not self.keys or self.keys[-1] != self.key):
            self.keys.append(self.key)
        return json.loads(response.content)["data"]

    def visit(self) -> dict[str, Any]:
        self.visits += 1
        return self.request("/visit/", tag=f"{self.tag}-{self.visits}")

    def read(self) -> dict[str, Any]:
        return self.request("/read/")

    def expected(self) -> dict[str, Any]:
        history = [f"{self.tag}-{n}" for n in range(1, self.visits + 1)]
        return {"count": self.visits, "history": history}

    def check_visit(self) -> None:
        assert self.visit() == self.expected(), f"{self.tag} lost data (keys {self.keys})"

    def check_read(self) -> None:
        assert self.read() == self.expected(), f"{self.tag} lost data (keys {self.keys})"


def new_visitors(prefix: str, count: int) -> list[Visitor]:
    """Create ``count`` users with one stored session each."""
    visitors = [Visitor(f"{prefix}{i}") for i in range(count)]
    for visitor in visitors:
        visitor.check_visit()
        assert visitor.key is not None
    return visitors


def by_node(visitors: Sequence[Visitor]) -> dict[str | None, list[Visitor]]:
    groups: dict[str | None, list[Visitor]] = {}
    for visitor in visitors:
        groups.setdefault(node_of(visitor.key), []).append(visitor)
    return groups


def pick(groups: dict[str | None, list[Visitor]], node: str, count: int) -> list[Visitor]:
    """Take ``count`` users of ``node`` out of ``groups``."""
    chosen = groups[node][:count]
    assert len(chosen) == count, f"too few sessions on {node}"
    del groups[node][:count]
    return chosen


def assert_relocated_once_off(visitors: Sequence[Visitor], dead: str, live: set[str]) -> None:
    """Sessions named after ``dead`` moved exactly once, to a ``live`` node; the others stayed."""
    for visitor in visitors:
        if node_of(visitor.keys[0]) == dead:
            assert visitor.relocations == 1, f"{visitor.tag}: keys {visitor.keys}"
            assert node_of(visitor.key) in live, visitor.keys
        else:
            assert visitor.relocations == 0, f"{visitor.tag}: keys {visitor.keys}"


def assert_gone(key: str) -> None:
    """A deleted or replaced key serves nothing: not by cookie, not through the store API."""
    replay = Visitor("replay")
    replay.client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.read() == {}, f"session {key} came back"
    assert SessionStore(key).load() == {}
    assert SessionStore().exists(key) is False


def assert_forwarded(key: str, user: Visitor) -> None:
    """A key retired by a relocation leads only to the session's current key and content."""
    replay = Visitor("replay")
    replay.client.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.read() == user.expected(), f"{key} did not lead to {user.tag}'s session"
    assert replay.key == user.key, f"{key} led to {replay.key}, not {user.key}"
    assert SessionStore().exists(key) is False
