"""The final check, after the load and every mend: what became of each session.

Each app instance is asked directly (not through the balancer, whose round robin would let one
instance's view hide the other's):

* a session the user did not log out is read with the last key the user was given, on every
  instance in turn, following a new cookie as a browser would (a read may move a session);
* a logged-out session is read under every key it ever had, on every instance: any reply that
  names its user is a resurrection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .accounting import SessionRecord, Verdict
from .http import Reply, fetch

READ = "/api/read"


def _ids(reply: Reply) -> frozenset[str]:
    body = reply.body or {}
    return frozenset([*body.get("op_ids", []), *body.get("cart_ids", [])])


def _names(reply: Reply, user: str) -> bool:
    return reply.status == 200 and reply.body is not None and reply.body.get("user") == user


async def _check_kept(record: SessionRecord, urls: Sequence[str], timeout: float) -> Verdict:
    key: str | None = record.keys[-1]
    seen, found = True, None
    for url in urls:
        reply = await fetch(url, "GET", READ, key, timeout=timeout)
        if reply.cookie is not None:
            key = reply.cookie or None
        if not _names(reply, record.user):
            seen = False
            continue
        found = _ids(reply) if found is None else found & _ids(reply)
    return Verdict(seen=seen and found is not None, found=found or frozenset())


async def _check_revoked(record: SessionRecord, urls: Sequence[str], timeout: float) -> Verdict:
    for key in record.keys:
        for url in urls:
            if _names(await fetch(url, "GET", READ, key, timeout=timeout), record.user):
                return Verdict(resurrected=True)
    return Verdict()


async def verify(
    records: Sequence[SessionRecord], urls: Sequence[str], in_flight: int = 16,
    timeout: float = 10.0,
) -> dict[str, Verdict]:
    """A verdict for every record, keyed by user."""
    slots = asyncio.Semaphore(in_flight)

    async def one(record: SessionRecord) -> tuple[str, Verdict]:
        async with slots:
            if record.logout_at is not None:
                return record.user, await _check_revoked(record, urls, timeout)
            return record.user, await _check_kept(record, urls, timeout)

    return dict(await asyncio.gather(*(one(record) for record in records)))
