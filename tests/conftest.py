"""Fixtures that start real memcached, Redis and app processes, and reset the engine per test.

Also the run-wide check that no log record carries a session key (tests/keyleaks.py): a handler
on the root logger at DEBUG from start to end, and a failed run if it found one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.appservers import AppFleet, app_fleet
from tests.keyleaks import (  # noqa: F401  (hooks of the run-wide key-leak check)
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess, ServerProcess

NodeT = TypeVar("NodeT", bound=ServerProcess)


def _node_factory(kind: Callable[..., NodeT], prefix: str) -> Iterator[Callable[..., list[NodeT]]]:
    """Yield a factory that starts N nodes named <prefix>1..<prefix>N; stop them all after."""
    started: list[NodeT] = []

    def start(count: int, **kwargs: object) -> list[NodeT]:
        nodes = [kind(f"{prefix}{i + 1}", **kwargs).start() for i in range(count)]
        started.extend(nodes)
        return nodes

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def memcached_nodes() -> Iterator[Callable[..., list[MemcachedProcess]]]:
    """Factory: start N memcached nodes named n1..nN; all are killed after the test."""
    yield from _node_factory(MemcachedProcess, "n")


@pytest.fixture
def redis_nodes() -> Iterator[Callable[..., list[RedisProcess]]]:
    """Factory: start N redis-server nodes named r1..rN; all are killed after the test."""
    yield from _node_factory(RedisProcess, "r")


@pytest.fixture
def fleet() -> Iterator[AppFleet]:
    """The app servers (gunicorn) a test starts; every one is stopped after the test."""
    with app_fleet() as started:
        yield started


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Every test starts with a fresh node registry (pools and health view)."""
    from django_msm.runtime import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture(autouse=True)
def _no_statistics_publishing() -> Iterator[None]:
    """Tests count node commands; the publisher's periodic writes would add to them. Tests of
    publishing connect it themselves (``publish.connect()``)."""
    from django_msm.ops import publish

    publish.disconnect()
    yield
    publish.disconnect()

