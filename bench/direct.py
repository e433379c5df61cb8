"""The session store called directly: what one request does to it, without the request.

The engine section (issue 14) times a ``SessionStore``'s own work in one process: the view's
calls, then what Django's ``SessionMiddleware.process_response`` asks of the store (``accessed``,
``modified``, ``is_empty()``, the expiry, ``save()`` when modified). No WSGI handler, middleware
or signals, so no ``request_finished`` either: Django's cache client keeps its connection, as a
peer in its best set-up would (the section checks the servers' connection counters to be sure).

``StoreClients`` has the shape of ``measure.EngineClients`` (``engine``, ``run``), so
``phases.Bench`` interleaves and times it with the same loop as the request-cycle phases.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

from . import app
from .engines import Engine, Switch
from .measure import BenchError

StoreClass = type[SessionBase]
Operation = Callable[[StoreClass, "str | None", dict[str, Any]], SessionBase]
SHAPE_OF_URL = {url: shape for shape, url in app.SHAPES.items()}
_counter = itertools.count()


def finish(session: SessionBase) -> None:
    """The store's part of Django's ``SessionMiddleware.process_response`` (cookie and header
    handling left out: they cost every engine the same and are not the store's work)."""
    _vary = session.accessed  # asked first, as the middleware does (for the Vary header)
    modified, empty = session.modified, session.is_empty()
    if (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty:
        if not session.get_expire_at_browser_close():
            session.get_expiry_age()
        session.save()


def read(store_class: StoreClass, key: str | None, content: dict[str, Any]) -> SessionBase:
    """bench.app's read view: two keys of an existing session, nothing changed."""
    session = store_class(key)
    if session.get("_auth_user_id") is None:
        raise BenchError(f"{store_class.__module__}: the session to read is gone")
    len(session.get("cart", ()))
    finish(session)
    return session


def modify(store_class: StoreClass, key: str | None, content: dict[str, Any]) -> SessionBase:
    """bench.app's modify view: one key of an existing session changed."""
    session = store_class(key)
    if "_auth_user_id" not in session:
        raise BenchError(f"{store_class.__module__}: the session to modify is gone")
    session["last_seen"] = next(_counter)
    finish(session)
    return session


def create(store_class: StoreClass, key: str | None, content: dict[str, Any]) -> SessionBase:
    """bench.app's create view: a new session with the whole content, a login of a user of its
    own (as on a site: one user logging in again and again would keep hitting USER_SESSIONS_MAX)."""
    session = store_class()
    session.update({**content, "_auth_user_id": app.new_user_id()})
    finish(session)
    return session


OPERATIONS: dict[str, Operation] = {"read": read, "modify": modify, "create": create}


class StoreClients:
    """One engine's ``SessionStore`` called directly, with one existing session per size."""

    def __init__(self, engine: Engine, switch: Switch):
        self.engine = engine
        self.switch = switch
        self.keys: dict[int | None, str] = {}
        self.created: list[SessionBase] = []  # by create batches, until cleanup()

    def active(self):  # type: ignore[no-untyped-def]
        return self.switch.active(self.engine)

    def _key(self, store_class: StoreClass, size: int | None) -> str:
        """The key of this engine's session of ``size`` bytes, created on first use."""
        if size not in self.keys:
            session = create(store_class, None, app.session_content(size))
            if session.session_key is None:
                raise BenchError(f"{self.engine.name}: no session created")
            self.keys[size] = session.session_key
        return self.keys[size]

    def run(self, url: str, count: int, size: int | None = None) -> list[int]:
        """``count`` operations of the shape whose view is at ``url``; each one's nanoseconds."""
        shape = SHAPE_OF_URL[url]
        operation, content = OPERATIONS[shape], app.session_content(size)
        clock, elapsed, created = time.perf_counter_ns, [], self.created
        with self.active():
            store_class = import_module(settings.SESSION_ENGINE).SessionStore
            key = None if shape == "create" else self._key(store_class, size)
            for _ in range(count):
                started = clock()
                session = operation(store_class, key, content)
                elapsed.append(clock() - started)
                if shape == "create":
                    created.append(session)
        return elapsed

    def cleanup(self) -> None:
        """Delete the sessions created since the last call, between rounds: memcached then
        never evicts the sessions being read, and no batch's command counts include these."""
        with self.active():
            for session in self.created:
                session.delete()
        self.created.clear()
