"""The load generator: simulated users driving testproject's JSON API through the balancer.

Each user logs in, then reads, counts, fills a cart and logs out, with think times between
actions; a fifth of its actions are *two* updates sent at once with the same cookie (two tabs,
or a page firing two requests), so that concurrent requests of one user are part of the load.
Where the schedule says so (``idle_share``), some users are idle: they log in, make one update
and send nothing more, so the final check finds out whether a session nobody touched during
the faults survived them (most users of a site, between two maintenance steps).
Replies are applied to the user's cookie in the order they arrive, as a browser does. While a
fault is on, users log out more often, so that revocation under failure is exercised.

Bounded in time (the schedule's duration) and in count (``LoadParams.max_requests``); requests
in flight are bounded too, and each has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from dataclasses import dataclass

from .accounting import Sample, SessionRecord
from .http import Reply, fetch
from .schedule import Schedule


@dataclass(frozen=True)
class LoadParams:
    users: int = 240
    in_flight: int = 32
    think: tuple[float, float] = (0.4, 1.6)
    ramp: float = 2.0  # users start over this many seconds
    max_requests: int = 20_000
    timeout: float = 10.0
    seed: int = 1


# Actions after login, by weight; "pair" is two updates at once.
ACTIONS = (("read", 35), ("increment", 30), ("cart", 15), ("pair", 20))


class Load:
    """Runs the users against ``url`` and keeps what they saw."""

    def __init__(self, url: str, schedule: Schedule, params: LoadParams):
        self.url = url
        self.schedule = schedule
        self.params = params
        self.samples: list[Sample] = []
        self.records: list[SessionRecord] = []
        self._started = time.monotonic()
        self._slots = asyncio.Semaphore(params.in_flight)
        self._ids = itertools.count()

    def now(self) -> float:
        return time.monotonic() - self._started

    def next_id(self) -> str:
        return f"u{next(self._ids)}"

    @property
    def running(self) -> bool:
        return self.now() < self.schedule.duration and len(self.samples) < self.params.max_requests

    async def send(
        self, method: str, path: str, cookie: str | None, form: dict[str, str] | None = None
    ) -> Reply:
        async with self._slots:
            sent = self.now()
            reply = await fetch(self.url, method, path, cookie, form, self.params.timeout)
            self.samples.append(Sample(sent, self.now() - sent, reply.status))
        return reply

    async def run(self) -> None:
        self._started = time.monotonic()
        users = [User(self, slot) for slot in range(self.params.users)]
        await asyncio.gather(*(user.run() for user in users))


class User:
    """One simulated user with one cookie jar (the session cookie only)."""

    def __init__(self, load: Load, slot: int):
        self.load = load
        self.slot = slot
        self.rng = random.Random(load.params.seed * 100_003 + slot)
        self.cookie: str | None = None
        self.record: SessionRecord | None = None
        self.logins = 0
        # Idle slots spread evenly over the users (and so over the ramp): exactly
        # floor(users * idle_share) of them, whatever the seed.
        share = load.schedule.idle_share
        self.idle = math.floor((slot + 1) * share) > math.floor(slot * share)

    async def run(self) -> None:
        params = self.load.params
        await asyncio.sleep(self.rng.uniform(0, params.ramp))
        if self.idle:
            return await self.visit_once()
        while self.load.running:
            await self.step()
            await asyncio.sleep(self.rng.uniform(*params.think))

    async def step(self) -> None:
        record = self.record
        if record is None:
            return await self.login()
        schedule = self.load.schedule
        in_fault = schedule.in_fault(self.load.now())
        rate = schedule.fault_logout_rate if in_fault else schedule.logout_rate
        if record.logout_tried or self.rng.random() < rate:
            return await self.logout(record)
        names, weights = zip(*ACTIONS, strict=True)
        action = self.rng.choices(names, weights)[0]
        if action == "read":
            return await self.read(record)
        if action == "pair":
            second = self.rng.choice(("increment", "cart"))
            await asyncio.gather(self.update(record, "increment"), self.update(record, second))
            return None
        return await self.update(record, action)

    async def visit_once(self) -> None:
        """An idle user: log in and make one update, then nothing until the final check."""
        await self.login()
        if self.record is not None and self.load.running:
            await self.update(self.record, "increment")

    # -- actions ----------------------------------------------------------------------------------
    async def login(self) -> None:
        self.logins += 1
        name = f"s{self.slot}.{self.logins}"
        reply = await self.load.send("POST", "/api/login", None, {"user": name})
        if reply.status == 200 and reply.body and reply.body.get("user") == name and reply.cookie:
            self.cookie = reply.cookie
            self.record = SessionRecord(name, [reply.cookie], self.load.now())
            self.load.records.append(self.record)

    async def _send(
        self, record: SessionRecord, method: str, path: str, form: dict[str, str] | None = None
    ) -> Reply:
        """Send with the jar's cookie; trace what went out and what came back."""
        sent, cookie = self.load.now(), self.cookie
        reply = await self.load.send(method, path, cookie, form)
        body = reply.body or {}
        record.trace.append(
            f"{sent:.3f}-{self.load.now():.3f} {path} {form or ''} cookie={cookie} -> "
            f"{reply.status} set-cookie={reply.cookie} user={body.get('user')} "
            f"ops={body.get('ops')} cart={body.get('cart')} {reply.error}".rstrip()
        )
        return reply

    async def read(self, record: SessionRecord) -> None:
        self.settle(record, await self._send(record, "GET", "/api/read"))

    async def update(self, record: SessionRecord, kind: str) -> None:
        update_id = self.load.next_id()
        path = "/api/increment" if kind == "increment" else "/api/cart"
        reply = await self._send(record, "POST", path, {"id": update_id})
        self.settle(record, reply, update_id)

    async def logout(self, record: SessionRecord) -> None:
        sent = self.load.now()
        reply = await self._send(record, "POST", "/api/logout", {})
        if reply.status != 200:
            record.logout_tried = True  # it may have happened: try again next time
            return
        record.logout_at = sent
        self.record = None
        self.cookie = None

    # -- replies ----------------------------------------------------------------------------------
    def settle(self, record: SessionRecord, reply: Reply, update_id: str | None = None) -> None:
        """Apply a reply to the cookie jar and to what the user knows of their session."""
        if reply.cookie is not None:
            self.cookie = reply.cookie or None
            if reply.cookie and reply.cookie not in record.keys:
                record.keys.append(reply.cookie)
        if reply.cookie == "":
            return self.kicked(record)
        if reply.status != 200 or reply.body is None:
            return None
        user = reply.body.get("user")
        if user == record.user:
            if update_id is not None:
                record.acked.add(update_id)
        elif user is None:
            self.kicked(record)
        else:
            record.crossed += 1
        return None

    def kicked(self, record: SessionRecord) -> None:
        """Seen logged out: note it once; log in again with an empty cookie jar, so that the
        new login leaves the old session's data alone for the final check."""
        if record.kicked_at is None:
            record.kicked_at = self.load.now()
        if self.record is record:
            self.record = None
            self.cookie = None
