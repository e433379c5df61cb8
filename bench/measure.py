"""Timing and counting: batches of full Django requests, server-side command counts, threads.

Every batch goes through ``django.test.Client``: WSGI request, the engine's session middleware,
and the ``request_started``/``request_finished`` signals (Django closes its cache connections on
the latter, so a request of Django's memcached engine pays a reconnect, as in production).
Commands per request are read from the servers' own statistics before and after a batch, so the
tables show what each engine sent, not what we believe it sends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis
from django.test import Client
from pymemcache.client.base import Client as RawClient

from . import app
from .engines import Engine, Switch

# memcached stats summed over nodes; cmd_set counts set, add and replace (and meta ms) alike.
MEMCACHED_COUNTERS = ("cmd_get", "cmd_set", "cmd_touch", "delete_hits", "delete_misses",
                      "total_connections")


class BenchError(RuntimeError):
    """A request of the benchmark did not do what it claims to measure."""


def _check(engine: str, url: str, status: int) -> None:
    if status != 200:
        raise BenchError(f"{engine} {url}: status {status}")


class EngineClients:
    """The test clients of one engine: a cookieless one, and one holding a session per size
    (``None``: the default content), created on first use."""

    def __init__(self, engine: Engine, switch: Switch):
        self.engine = engine
        self.switch = switch
        self.fresh = Client()
        self.sessions: dict[int | None, Client] = {}
        self.pool: list[Client] = []  # one client with its own session per thread
        with self.active():
            _check(engine.name, app.BASELINE, self.fresh.get(app.BASELINE).status_code)
        self.session(None)

    def active(self):  # type: ignore[no-untyped-def]
        return self.switch.active(self.engine)

    def _new_session(self, size: int | None) -> Client:
        client = Client()
        with self.active():  # the client's handler loads the engine's middleware now
            url = app.create_url(size)
            _check(self.engine.name, url, client.get(url).status_code)
        return client

    def session(self, size: int | None) -> Client:
        if size not in self.sessions:
            self.sessions[size] = self._new_session(size)
        return self.sessions[size]

    def threads(self, count: int) -> list[Client]:
        while len(self.pool) < count:
            self.pool.append(self._new_session(None))
        return self.pool[:count]

    def run(self, url: str, count: int, size: int | None = None) -> list[int]:
        """Send ``count`` requests to ``url``; return each one's nanoseconds."""
        fresh = url == app.SHAPES["create"]
        client = self.fresh if fresh else self.session(size)
        cookies, clock = client.cookies, time.perf_counter_ns
        elapsed = []
        with self.active():
            for _ in range(count):
                if fresh:
                    cookies.clear()
                started = clock()
                response = client.get(url)
                elapsed.append(clock() - started)
                if response.status_code != 200:
                    _check(self.engine.name, url, response.status_code)
        return elapsed

    def throughput(self, url: str, threads: int, per_thread: int) -> float:
        """Requests per second of ``threads`` threads, each on its own session."""
        clients = self.threads(threads)
        with self.active():  # settings are process-wide: the threads see this engine's
            return _concurrent(self.engine.name, clients, url, per_thread)


def _concurrent(engine: str, clients: list[Client], url: str, per_thread: int) -> float:
    start = threading.Barrier(len(clients) + 1)
    errors: list[BaseException] = []

    def work(client: Client) -> None:
        start.wait()
        try:
            for _ in range(per_thread):
                status = client.get(url).status_code
                if status != 200:
                    _check(engine, url, status)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(client,)) for client in clients]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise BenchError(f"{engine} {url} in threads: {errors[0]!r}") from errors[0]
    return len(clients) * per_thread / elapsed


class MemcachedCounters:
    """memcached's command counters over every node, read with one persistent connection each."""

    def __init__(self, ports: Iterable[int]):
        self.clients = [RawClient(("127.0.0.1", port), default_noreply=False) for port in ports]

    def read(self, nodes: int | None = None) -> Counter[str]:
        """Sum over the first ``nodes`` nodes (all by default): those the engine uses."""
        total: Counter[str] = Counter()
        for client in self.clients[:nodes]:
            stats = client.stats()
            for name in MEMCACHED_COUNTERS:
                total[name] += int(stats[name.encode()])
        return total

    @staticmethod
    def per_request(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
        delta = {name: after[name] - before[name] for name in MEMCACHED_COUNTERS}
        return {
            "get": delta["cmd_get"] / count,
            "store": delta["cmd_set"] / count,
            "touch": delta["cmd_touch"] / count,
            "delete": (delta["delete_hits"] + delta["delete_misses"]) / count,
            "connect": delta["total_connections"] / count,
        }

    def close(self) -> None:
        for client in self.clients:
            client.close()


class RedisCounters:
    """Redis's per-command call counts (``INFO commandstats``) and accepted connections."""

    IGNORED = frozenset({"info"})  # our own readings

    def __init__(self, ports: Iterable[int]):
        self.clients = [redis.Redis(host="127.0.0.1", port=port) for port in ports]

    def read(self, nodes: int | None = None) -> Counter[str]:
        total: Counter[str] = Counter()
        for client in self.clients[:nodes]:
            for name, stats in client.info("commandstats").items():
                total[name.removeprefix("cmdstat_")] += int(stats["calls"])
            total["connect"] += int(client.info("stats")["total_connections_received"])
        return total

    def per_request(
        self, before: Counter[str], after: Counter[str], count: int
    ) -> dict[str, float]:
        return {
            name: (after[name] - before[name]) / count
            for name in after
            if name not in self.IGNORED and after[name] != before[name]
        }

    def close(self) -> None:
        for client in self.clients:
            client.close()


class Floor:
    """Raw round trips on one node with an open connection: the cost no engine can go below."""

    KEY = "bench:floor"

    def __init__(self, kind: str, port: int):
        self.kind = kind
        if kind == "memcached":
            self.client: RawClient | redis.Redis = RawClient(
                ("127.0.0.1", port), default_noreply=False
            )
        else:
            self.client = redis.Redis(host="127.0.0.1", port=port)

    def _store(self, value: bytes) -> Callable[[], object]:
        client, key = self.client, self.KEY
        if isinstance(client, RawClient):
            return lambda: client.set(key, value, expire=0, noreply=False)
        return lambda: client.set(key, value)

    def measure(self, value: bytes, count: int) -> tuple[list[int], list[int]]:
        """Nanoseconds of ``count`` gets and ``count`` sets of ``value``."""
        store = self._store(value)
        store()
        fetch, key = self.client.get, self.KEY
        return _timed(lambda: fetch(key), count), _timed(store, count)

    def close(self) -> None:
        self.client.close()


def _timed(operation: Callable[[], object], count: int) -> list[int]:
    clock = time.perf_counter_ns
    elapsed = []
    for _ in range(count):
        started = clock()
        operation()
        elapsed.append(clock() - started)
    return elapsed
