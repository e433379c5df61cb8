"""KeyRotation: re-sign copies that were verified with a ``SECRET_KEY_FALLBACKS`` key.

Rotating ``SECRET_KEY`` moves the old secret to ``SECRET_KEY_FALLBACKS``; copies signed with it
still verify. But a session that is only *read* after the rotation is never rewritten, so once
the fallback is removed it fails its signature and is lost (issue 12: 50 of 50). So the request
that reads a copy signed with a fallback re-signs both copies of the session with the current
key: the same content, revision, write time and expiry, only a new signature.

Each rewrite is a compare-and-set on the version token read with the bytes
(``Store.cas``): a save or a deletion that landed since wins, and the re-sign is
dropped (a writer signs with the current key anyway). The primary is rewritten, then the first
backup place that holds a copy; both once per session after a rotation, and only then.
"""

from __future__ import annotations

from ..clock import Clock
from ..exceptions import CorruptCopy, NodeUnavailable
from .config import MsmConfig
from .envelope import pack, unpack
from .keys import SessionId
from .nodes import Node
from .registry import NodeRegistry
from .stats import statistics


class KeyRotation:
    """Rewrites a session's copies under the current signing key."""

    def __init__(self, registry: NodeRegistry, config: MsmConfig, clock: Clock):
        self.registry = registry
        self.config = config
        self.clock = clock
        self.keys = config.keys

    def resign(self, sid: SessionId, primary: Node) -> bytes | None:
        """Re-sign the primary copy and the first backup copy found; return the primary's new
        version token (None if it was not rewritten)."""
        token, _ = self._resign_one(primary, self.keys.primary(sid))
        backup = self.keys.backup(sid)
        for node in self.registry.backup_nodes(primary):
            if self._resign_one(node, backup)[1]:
                break
        return token

    def _resign_one(self, node: Node, key: str) -> tuple[bytes | None, bool]:
        """Re-sign the copy at ``key`` on ``node`` if a fallback key signed it.

        Return the new version token (None if nothing was written) and whether a verifiable
        copy was found there.
        """
        try:
            data, token = self.registry.call(node, lambda store: store.get_versioned(key))
            if data is None or token is None:
                return None, False
            copy = unpack(data, self.config.signing_keys)
            if not copy.signed_with:
                return None, True
            ttl = max(1, int(copy.expires_at - self.clock.time()))
            fresh = pack(copy, self.config.signing_keys[0], self.config.compress_min_size)
            written = self.registry.call(
                node, lambda store: store.cas(key, fresh, ttl, token)
            )
        except CorruptCopy:
            return None, False  # the load that called us logged and counted it
        except NodeUnavailable:
            return None, False  # next time: a fallback key verifies it until it is removed
        if written is not None:
            statistics.incr("copies_resigned")
        return written, True
