"""The keys, values and calls the store contract tests make (``tests/store_contract.py``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django_msm.stores import Store

# Looks like a session's storage key: no error message may carry it.
KEY = "msm:n1.contractsecret0123456789abcdef"
VALUE = b"\x00binary\r\nEND\r\nSET x 0 0 1\r\n\xff"
DAY = 24 * 60 * 60
LONG_TTL = 90 * DAY  # memcached reads an exptime above 30 days as a unix time
LOCK_TTL = 1.0
SHORT_LOCK_TTL = 0.2
RACERS = 8

Write = Callable[[Store, str, bytes, int], object]
WRITERS: dict[str, Write] = {
    "set": lambda s, k, v, t: s.set(k, v, t),
    "add": lambda s, k, v, t: s.add(k, v, t),
    "replace": lambda s, k, v, t: s.replace(k, v, t),
    "touch": lambda s, k, v, t: s.touch(k, t),
    "add_versioned": lambda s, k, v, t: s.add_versioned(k, v, t),
    "replace_versioned": lambda s, k, v, t: s.replace_versioned(k, v, t),
    "cas": lambda s, k, v, t: s.cas(k, v, t, s.version(k) or b"0"),
}
NEEDS_ITEM = {"replace", "touch", "replace_versioned", "cas"}
CONDITIONAL_WRITERS = ["add", "replace", "add_versioned", "replace_versioned", "cas"]


def every_call(key: str) -> list[tuple[str, Callable[[Store], object]]]:
    """One call of each Store method on ``key``: what a dead node must refuse, all of it."""
    return [
        ("get", lambda s: s.get(key)), ("add", lambda s: s.add(key, VALUE, 10)),
        ("replace", lambda s: s.replace(key, VALUE, 10)), ("set", lambda s: s.set(key, VALUE, 10)),
        ("touch", lambda s: s.touch(key, 10)), ("delete", lambda s: s.delete(key)),
        ("get_versioned", lambda s: s.get_versioned(key)), ("version", lambda s: s.version(key)),
        ("add_versioned", lambda s: s.add_versioned(key, VALUE, 10)),
        ("replace_versioned", lambda s: s.replace_versioned(key, VALUE, 10)),
        ("get_many_versioned", lambda s: s.get_many_versioned([key])),
        ("add_many_versioned", lambda s: s.add_many_versioned([(key, VALUE, 10)])),
        ("cas", lambda s: s.cas(key, VALUE, 10, b"1")),
        ("delete_if", lambda s: s.delete_if(key, b"1")),
        ("lock", lambda s: s.lock(key, b"owner", 5.0)), ("unlock", lambda s: s.unlock(key, b"1")),
        ("ping", lambda s: s.ping()),
        ("start", lambda s: s.start("add_versioned", key, VALUE, 10)()),
    ]


def race(count: int, attempt: Callable[[int], object]) -> list[object]:
    """Run ``attempt(i)`` on ``count`` threads released together; return the answers in order."""
    barrier = threading.Barrier(count)
    answers: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            answers[index] = attempt(index)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    assert not errors, errors
    return answers
