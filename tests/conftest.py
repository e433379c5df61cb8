"""Fixtures that start real memcached and Redis processes and point DJANGO_MSM at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess


@pytest.fixture
def memcached_nodes() -> Iterator[Callable[..., list[MemcachedProcess]]]:
    """Factory: start N memcached nodes named n1..nN; all are killed after the test."""
    started: list[MemcachedProcess] = []

    def start(count: int, **kwargs: object) -> list[MemcachedProcess]:
        nodes = [MemcachedProcess(f"n{i + 1}", **kwargs).start() for i in range(count)]
        started.extend(nodes)
        return nodes

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def redis_nodes() -> Iterator[Callable[..., list[RedisProcess]]]:
    """Factory: start N redis-server nodes named r1..rN; all are killed after the test."""
    started: list[RedisProcess] = []

    def start(count: int, **kwargs: object) -> list[RedisProcess]:
        nodes = [RedisProcess(f"r{i + 1}", **kwargs).start() for i in range(count)]
        started.extend(nodes)
        return nodes

    yield start
    for node in started:
        node.stop()


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Every test starts with a fresh node registry (pools and health view)."""
    from django_msm.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


@pytest.fixture(autouse=True)
def _no_statistics_publishing() -> Iterator[None]:
    """Tests count node commands; the publisher's periodic writes would add to them. Tests of
    publishing connect it themselves (``publish.connect()``)."""
    from django_msm import publish

    publish.disconnect()
    yield
    publish.disconnect()
