"""``python -m bench.user_sessions``: what the per-user index of issue 15 costs.

Starts two memcached processes on free loopback ports and configures Django in this process
with django_msm twice, the same nodes and settings but for ``USER_SESSIONS`` (on: the index;
off: the same engine without it), each keeping its own cluster (``bench.engines.Switch``).

1. Fill: 10,000 users each log in from two clients (full Django requests through django_msm's
   middleware, as ``django.contrib.auth.login`` changes the session: key cycled, user id set).
   Memory is then read from memcached itself (``lru_crawler metadump``): the bytes of the index
   items (both copies) per session, next to the bytes of the sessions' own two copies.
2. Cost: logins (a new client, one more session of a user who has two) and ordinary requests
   (a logged-in client reading, and one changing, its session) timed in batches, the two engines
   interleaved and alternating who goes first; medians per request, and the difference within
   each round (both engines ran moments apart, so a busy machine moves both). It is a report:
   the exit status is 0 whatever the figures, non-zero only if the harness fails.

    python -m bench.user_sessions                    # 10,000 users x 2 clients (about 2 min)
    python -m bench.user_sessions --users 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from tests.servers import MemcachedProcess

from .engines import MSM_ENGINE, Engine, Switch

MIDDLEWARE = "django_msm.middleware.SessionMiddleware"
CART = [{"sku": "BK-1042", "qty": 1}, {"sku": "MG-0007", "qty": 2}]


# -- the site: what django.contrib.auth.login does to a session, without a database -----------
def log_in(request: HttpRequest, user_id: str) -> JsonResponse:
    session = request.session
    session.cycle_key()
    session["_auth_user_id"] = user_id
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = "5f1d7a0c3e9b2846d1f0a7c4e8b3925d6a1c0f7e4b8d2a9c3f6e1b0d7a4c8e2f"
    session["cart"] = CART
    return JsonResponse({"ok": True})


def read(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.session.get("_auth_user_id")})


def modify(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"user": request.session.get("_auth_user_id")})


urlpatterns = [path("login/<str:user_id>/", log_in), path("read/", read), path("modify/", modify)]


def configure(nodes: str) -> dict[str, Engine]:
    settings.configure(
        DEBUG=False, SECRET_KEY="django_msm-bench-not-secret", ALLOWED_HOSTS=["testserver"],
        USE_TZ=True, ROOT_URLCONF="bench.user_sessions", MIDDLEWARE=[MIDDLEWARE],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_msm"],
        SESSION_ENGINE=MSM_ENGINE, DJANGO_MSM={"MEMCACHED_NODES": nodes},
    )
    django.setup()
    return {
        name: Engine(name, MSM_ENGINE, MIDDLEWARE,
                     msm={"MEMCACHED_NODES": nodes, "USER_SESSIONS": on})
        for name, on in (("index", True), ("no index", False))
    }


def client(number: int) -> Client:
    return Client(REMOTE_ADDR=f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}",
                  HTTP_USER_AGENT=f"Mozilla/5.0 (bench device {number}) AppleWebKit/537.36")


def logged_in(user_id: int, number: int) -> Client:
    browser = client(number)
    reply = browser.get(f"/login/{user_id}/")
    if reply.status_code != 200:
        raise RuntimeError(f"login answered {reply.status_code}")
    return browser


# -- memory, from memcached's own item sizes ---------------------------------------------------
def item_bytes(port: int) -> dict[str, list[int]]:
    """Item sizes on one node by kind: index copies, session copies, anything else."""
    sizes: dict[str, list[int]] = {"index": [], "sessions": [], "other": []}
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"lru_crawler metadump all\r\n")
        buffer = b""
        while not buffer.endswith(b"END\r\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("metadump ended early")
            buffer += chunk
    for line in buffer.decode().splitlines():
        if not line.startswith("key="):
            continue
        fields = dict(part.split("=", 1) for part in line.split())
        key = unquote(fields["key"])
        kind = ("index" if key.startswith(("usr:", "bak:usr:"))
                else "sessions" if len(key.removeprefix("bak:")) >= 32 else "other")
        sizes[kind].append(int(fields["size"]))
    return sizes


def fill(switch: Switch, engine: Engine, users: int, ports: list[int]) -> None:
    started = time.perf_counter()
    with switch.active(engine):
        for user_id in range(users):
            for device in range(2):
                logged_in(user_id, user_id * 2 + device)
    took = time.perf_counter() - started
    totals: dict[str, list[int]] = {"index": [], "sessions": [], "other": []}
    for port in ports:
        for kind, sizes in item_bytes(port).items():
            totals[kind] += sizes
    sessions = users * 2
    print(f"fill: {users:,} users x 2 clients = {sessions:,} logins in {took:.1f} s")
    print(f"  index items (both copies): {len(totals['index']):,}, "
          f"{sum(totals['index']) / 1024 / 1024:.2f} MiB")
    print(f"  index memory per session:    {sum(totals['index']) / sessions:7.1f} bytes")
    print(f"  session copies per session:  {sum(totals['sessions']) / sessions:7.1f} bytes "
          f"({len(totals['sessions']):,} items)")


# -- cost, interleaved -----------------------------------------------------------------------
def batch(switch: Switch, engine: Engine, requests: list[Callable[[], Any]]) -> float:
    """Median microseconds of one request over the batch."""
    times = []
    with switch.active(engine):
        for request in requests:
            start = time.perf_counter()
            request()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def cost(switch: Switch, engines: dict[str, Engine], users: int, rounds: int, count: int) -> None:
    ready: dict[str, dict[str, list[Client]]] = {}
    for name, engine in engines.items():
        with switch.active(engine):
            pool = [logged_in(users + 10_000 + i, 900_000 + i) for i in range(count)]
        ready[name] = {"read": pool, "modify": pool}
    medians: dict[tuple[str, str], list[float]] = {}
    next_user = 0
    for round_number in range(rounds):
        order = list(engines) if round_number % 2 == 0 else list(reversed(engines))
        for name in order:
            logins = [lambda u=next_user + i, n=2_000_000 + next_user + i: logged_in(u % users, n)
                      for i in range(count)]
            next_user += count
            shapes = {
                "login": logins,
                "read": [lambda c=c: c.get("/read/") for c in ready[name]["read"]],
                "modify": [lambda c=c: c.get("/modify/") for c in ready[name]["modify"]],
            }
            for shape, requests in shapes.items():
                medians.setdefault((name, shape), []).append(batch(switch, engines[name], requests))
    print(f"\ncost: median us per request, median of {rounds} interleaved rounds of {count}")
    print(f"  {'request':<8} {'no index':>10} {'index':>10} {'extra':>10}  paired extra per round")
    for shape in ("login", "read", "modify"):
        off, on = medians[("no index", shape)], medians[("index", shape)]
        paired = [round(b - a) for a, b in zip(off, on, strict=True)]
        mid_off, mid_on = statistics.median(off), statistics.median(on)
        print(f"  {shape:<8} {mid_off:10.0f} {mid_on:10.0f} {mid_on - mid_off:+10.0f}  "
              f"median {statistics.median(paired):+.0f}: {paired}")

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.user_sessions",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users in the fill")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--count", type=int, default=400, help="requests per batch")
    args = parser.parse_args(argv)
    nodes = [MemcachedProcess(f"n{i}", memory_mb=512) for i in (1, 2)]
    switch = Switch()
    try:
        for node in nodes:
            node.start()
        engines = configure(",".join(node.spec for node in nodes))
        fill(switch, engines["index"], args.users, [node.port for node in nodes])
        cost(switch, engines, args.users, args.rounds, args.count)
    finally:
        switch.close()
        for node in nodes:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
