"""Timing and counting: batches of full Django requests, server-side command counts, the floor.

Every batch goes through ``django.test.Client``: WSGI request, the stock ``SessionMiddleware``,
and the ``request_started``/``request_finished`` signals (Django closes its cache connections on
the latter, so a request of Django's engine pays a reconnect, as in production). Commands per
request are read from memcached's own ``stats`` before and after a batch, so the table shows
what each engine sent, not what we believe it sends.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Iterator

from django.core.cache import caches
from django.test import Client, override_settings
from pymemcache.client.base import Client as RawClient

from . import app

# memcached stats summed over nodes; cmd_set counts set, add and replace alike.
COUNTERS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses",
            "total_connections")


def _keep_open(**kwargs: object) -> None:
    """Stands in for the cache's ``close`` during django-kept requests."""


class BenchError(RuntimeError):
    """A request of the benchmark did not do what it claims to measure."""


class EngineClients:
    """The test clients of one engine: one holding a session cookie, one always cookieless."""

    def __init__(self, engine: str):
        self.engine = engine
        self.module = app.ENGINES[engine]
        self.keeps_connections = engine in app.KEEPS_CONNECTIONS
        with self.settings():
            # The handler imports SESSION_ENGINE once, when it loads the middleware.
            self.with_session = Client()
            self.fresh = Client()
            self._check(self.with_session.get(app.SHAPES["create"]), app.SHAPES["create"])
            self._check(self.fresh.get(app.BASELINE), app.BASELINE)

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        with override_settings(SESSION_ENGINE=self.module):
            if not self.keeps_connections:
                yield
                return
            # The signal still fires and close_caches still runs, as for the other engines;
            # only this thread's client ignores it.
            cache = caches["default"]
            cache.close = _keep_open  # type: ignore[method-assign]
            try:
                yield
            finally:
                del cache.close
                cache.close()  # the stock engine's next request must not find it open

    def _check(self, response: object, url: str) -> None:
        status = getattr(response, "status_code", None)
        if status != 200:
            raise BenchError(f"{self.engine} {url}: status {status}")

    def run(self, url: str, count: int) -> list[int]:
        """Send ``count`` requests to ``url``; return each one's nanoseconds."""
        fresh = url == app.SHAPES["create"]
        client = self.fresh if fresh else self.with_session
        cookies, check, clock = client.cookies, self._check, time.perf_counter_ns
        elapsed = []
        with self.settings():
            for _ in range(count):
                if fresh:
                    cookies.clear()
                started = clock()
                response = client.get(url)
                elapsed.append(clock() - started)
                if response.status_code != 200:
                    check(response, url)
        return elapsed


class ServerCounters:
    """memcached's command counters over every node, read with one persistent connection each."""

    def __init__(self, ports: Iterable[int]):
        self.clients = [RawClient(("127.0.0.1", port), default_noreply=False) for port in ports]

    def read(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for client in self.clients:
            stats = client.stats()
            for name in COUNTERS:
                total[name] += int(stats[name.encode()])
        return total

    def close(self) -> None:
        for client in self.clients:
            client.close()


def per_request(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
    """Commands per request between two readings (the readers' own connections stay open)."""
    delta = {name: after[name] - before[name] for name in COUNTERS}
    return {
        "get": delta["cmd_get"] / count,
        "store": delta["cmd_set"] / count,
        "touch": delta["cmd_touch"] / count,
        "delete": (delta["delete_hits"] + delta["delete_misses"]) / count,
        "connect": delta["total_connections"] / count,
    }


class Floor:
    """Raw pymemcache round trips on one node: the cost no session engine can go below."""

    KEY = "bench:floor"

    def __init__(self, port: int, value: bytes):
        self.client = RawClient(("127.0.0.1", port), default_noreply=False)
        self.value = value
        self.client.set(self.KEY, value, expire=0)

    def get(self, count: int) -> list[int]:
        get, key, clock = self.client.get, self.KEY, time.perf_counter_ns
        elapsed = []
        for _ in range(count):
            started = clock()
            get(key)
            elapsed.append(clock() - started)
        return elapsed

    def set(self, count: int) -> list[int]:
        store, key, value, clock = self.client.set, self.KEY, self.value, time.perf_counter_ns
        elapsed = []
        for _ in range(count):
            started = clock()
            store(key, value, expire=0, noreply=False)
            elapsed.append(clock() - started)
        return elapsed

    def close(self) -> None:
        self.client.close()
