"""Load and bookkeeping for ``tests/test_locking_under_faults.py``: many users' counters updated
concurrently over HTTP while a node fails, and an account of what the users were promised.

``Ledger`` records what the clients were told: every acknowledged counter value per lineage (a
user), every status, every logout, every key a response handed out. ``Load`` runs the client
threads. ``live_keys`` afterwards finds every key under which a session can still be loaded, by
listing the nodes' items (memcached's ``lru_crawler metadump``) and resolving each key through
the app, following the cookies it sends back; two live keys for one lineage are a fork.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.appservers import AppServer, request, session_cookie
from tests.servers import MemcachedProcess

HTTP_TIMEOUT = 30.0  # far above any lock wait: a client never gives up on an answer
MAX_REQUESTS_PER_CLIENT = 20_000  # a bound on each client loop besides the stop event
RESOLVE_HOPS = 6
# A primary (``<key>``) or backup (``bak:<key>``) copy's item; the key format is the README's.
SESSION_ITEM = re.compile(r"^(?:bak:)?([a-z0-9]{32}-[A-Za-z0-9_]{1,32})$")


@dataclass
class Answer:
    status: int
    lineage: str | None
    count: int | None
    key: str | None  # the key the view saw: the cookie's, or where a forward led the load
    cookie: str | None  # the session cookie sent back: None none, "" deleted


def ask(server: AppServer, path: str, cookie: str | None) -> Answer:
    """One GET carrying ``cookie``; what the user agent sees of the answer."""
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    status, response_headers, raw = request("GET", server.port, path, headers, None, HTTP_TIMEOUT)
    body = _json(raw) if status == 200 else {}
    return Answer(
        status, body.get("lineage"), body.get("count"), body.get("key"),
        session_cookie(response_headers),
    )


def _json(raw: bytes) -> dict:
    import json

    return json.loads(raw) if raw.startswith(b"{") else {}


@dataclass
class Ledger:
    """What the clients were told, shared by the client threads (one lock)."""

    acks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    logouts: int = 0  # an answer without the session's data, or a deleted cookie
    switched: int = 0  # an answer with another user's session
    errors: list[str] = field(default_factory=list)  # no answer at all
    cookies: dict[str, str] = field(default_factory=dict)  # lineage -> the user agent's cookie
    seen: set[str] = field(default_factory=set)  # every key a response handed out
    moves: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # old -> new
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> int:
        with self._lock:
            return sum(len(values) for values in self.acks.values())

    def cookie(self, lineage: str) -> str:
        with self._lock:
            return self.cookies[lineage]

    def record(self, lineage: str, answer: Answer, increment: bool = True) -> None:
        """Book one answer as a browser would take it: the last cookie received wins.

        The counter value of an increment's 200 is an acknowledgement; a read's is not.
        """
        with self._lock:
            self.statuses[answer.status] += 1
            if answer.cookie:
                self.cookies[lineage] = answer.cookie
                self.seen.add(answer.cookie)
                if answer.key and answer.cookie != answer.key:
                    # The view saw one key and the response carries another: this request
                    # moved the session (a forward it followed shows in ``key`` instead).
                    self.moves[answer.key].add(answer.cookie)
            if answer.status != 200:
                return
            if answer.lineage is None or answer.cookie == "":
                self.logouts += 1
            elif answer.lineage != lineage:
                self.switched += 1
            elif increment and answer.count is not None:
                self.acks[lineage].append(answer.count)

    def forked_keys(self) -> int:
        """Keys that requests moved to two different new keys: the session split in two."""
        with self._lock:
            return sum(1 for targets in self.moves.values() if len(targets) > 1)

    def duplicates(self) -> int:
        """Counter values acknowledged twice for one user: two requests built on one state."""
        with self._lock:
            return sum(len(v) - len(set(v)) for v in self.acks.values())


class Load:
    """``clients`` threads incrementing random users' counters over ``servers`` until stopped."""

    def __init__(
        self, servers: Sequence[AppServer], ledger: Ledger, lineages: Sequence[str], path: str
    ):
        self.servers, self.ledger, self.lineages = servers, ledger, list(lineages)
        self.path = path
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, clients: int) -> None:
        for number in range(clients):
            thread = threading.Thread(target=self._client, args=(number,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _client(self, number: int) -> None:
        rng = random.Random(number)
        for turn in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set():
                return
            lineage = rng.choice(self.lineages)
            server = self.servers[(number + turn) % len(self.servers)]
            try:
                answer = ask(server, self.path, self.ledger.cookie(lineage))
            except OSError as exc:
                with self.ledger._lock:
                    self.ledger.errors.append(f"{server.name}: {exc!r}")
                continue
            self.ledger.record(lineage, answer)

    def finish(self, timeout: float = HTTP_TIMEOUT + 10) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
        assert not any(thread.is_alive() for thread in self.threads), "a client never returned"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def stored_keys(node: MemcachedProcess) -> set[str]:
    """Session keys with a primary or backup item on ``node`` (tombstones included).

    A crawl may be running already (AUTO_REPAIR walks the nodes the same way after the fault):
    memcached answers BUSY, and the dump is asked again until the crawler is free.
    """
    deadline = time.monotonic() + 30
    while True:
        reply = _metadump(node)
        if not reply.startswith(b"BUSY"):
            break
        assert time.monotonic() < deadline, "the lru crawler stayed busy"
        time.sleep(0.1)
    assert not reply.startswith(b"ERROR"), reply[:80]
    return _keys_in(reply)


def _metadump(node: MemcachedProcess) -> bytes:
    """One ``lru_crawler metadump all`` reply, whole (or the BUSY/ERROR line)."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
        sock.sendall(b"lru_crawler metadump all\r\n")
        reply = b""
        deadline = time.monotonic() + 10
        while not (reply == b"END\r\n" or reply.endswith(b"\nEND\r\n")):
            assert time.monotonic() < deadline, "metadump did not end"
            chunk = sock.recv(65536)
            assert chunk, f"metadump cut short: {reply[-80:]!r}"
            reply += chunk
            if reply.startswith((b"BUSY", b"ERROR")) and reply.endswith(b"\r\n"):
                return reply
    return reply


def _keys_in(reply: bytes) -> set[str]:
    keys = set()
    for line in reply.decode().splitlines():
        name = urllib.parse.unquote(line.partition(" ")[0].removeprefix("key="))
        match = SESSION_ITEM.match(name)
        if match:
            keys.add(match.group(1))
    return keys


def resolve(server: AppServer, key: str) -> tuple[str, str] | None:
    """Follow ``key`` through the app to where its session lives: (lineage, live key), or None
    when nothing loads under it. A moved key's answer carries the new key; it is followed."""
    for _ in range(RESOLVE_HOPS):
        answer = ask(server, "/fault/read/", key)
        assert answer.status == 200, f"reading a stored key answered {answer.status}"
        if answer.lineage is None or answer.cookie == "":
            return None
        if not answer.cookie or answer.cookie == key:
            return answer.lineage, key
        key = answer.cookie
    raise AssertionError(f"a key still moved after {RESOLVE_HOPS} reads")


def live_keys(
    server: AppServer, nodes: Sequence[MemcachedProcess], seen: set[str]
) -> dict[str, set[str]]:
    """Every lineage's live keys, from every key stored on a node or ever handed out."""
    candidates = set(seen)
    for node in nodes:
        candidates |= stored_keys(node)
    lives: dict[str, set[str]] = defaultdict(set)
    for key in sorted(candidates):
        found = resolve(server, key)
        if found is not None:
            lives[found[0]].add(found[1])
    return lives
