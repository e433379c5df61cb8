"""The witness read of a save, sent as soon as the session changes (issue 14).

On memcached a save reads the witness copy before its compare-and-set (``core.witness``: CAS
values are per server, so the home's version cannot stand for the witness's). That read needs
nothing the view computes: it can leave when Django first sets ``modified`` and be answered
while the view and the middleware carry on, so the save finds the reply waiting instead of
waiting one round trip for it. The reply is only a first read: the compare-and-set still fences
the write, and a witness that changed meanwhile is read again (``Witness.commit``).

Nothing is sent where the save reads nothing (versions that follow the bytes, a single node),
for a session that moves at its save, or for one not loaded under this key.
"""

from __future__ import annotations

import weakref

from .dispatch import Pending
from .keys import SessionId


class ReadAhead:
    """At most one witness read in flight for one session engine (one request). A read that no
    save, logout or end of request settled (a view that changed the session, then a response
    Django does not save) has its connection closed when the engine goes away, never read."""

    def __init__(self) -> None:
        self.pending: Pending | None = None
        self.for_key: str | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self, key: str, pending: Pending | None) -> None:
        if self.pending is None and pending is not None:
            self.pending, self.for_key = pending, key
            self._finalizer = weakref.finalize(self, pending.abandon)

    def take(self, sid: SessionId) -> Pending | None:
        """The read in flight for ``sid``'s save. It stays held until ``settle`` (the end of
        the save): a commit that returned before reading it leaves nothing behind."""
        if self.pending is not None and self.for_key != str(sid):
            self.settle()
        return self.pending

    def settle(self) -> None:
        """Read the reply if nobody did (its connection goes back to its pool); let it go."""
        pending = self._release()
        if pending is not None:
            pending.settle()

    def _release(self) -> Pending | None:
        pending, self.pending = self.pending, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return pending

