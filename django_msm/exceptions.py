"""The one exception tree of django_msm.

    MSMError
    ├── ConfigurationError (also django.core.exceptions.ImproperlyConfigured)
    ├── NodeError
    │   ├── NodeUnavailable      a node refused, reset or timed out: quarantine it
    │   ├── NoNodesAvailable     no node could take a new or relocated session
    │   └── ItemTooLarge         the node refused the item for its size
    ├── SessionTooLarge          a session is larger than MAX_SESSION_SIZE
    ├── SessionNotSerializable   SESSION_SERIALIZER cannot encode a value of the session
    ├── SessionKeyTaken          a create under a given key found it taken (Django's CreateError)
    ├── SessionDeleted           an update found the session gone (Django's UpdateError)
    ├── CorruptCopy              stored bytes failed the signature or could not be decoded
    ├── SessionConflict          a save lost to a concurrent write or relocation: nothing stored
    └── LockError
        └── LockTimeout          the session lock could not be had within the wait budget

Driver errors (pymemcache, sockets) are always wrapped with ``raise ... from exc``.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class MSMError(Exception):
    """Raised for any django_msm failure; the base of the tree."""


class ConfigurationError(MSMError, ImproperlyConfigured):
    """Raised when DJANGO_MSM cannot be used; system checks report the same problems earlier."""


class NodeError(MSMError):
    """Raised when a node operation did not succeed."""


class NodeUnavailable(NodeError):
    """Raised when a node refused a connection, reset it or did not answer in time."""

    def __init__(self, node_id: str, cause: BaseException | str, *, refused: bool = False):
        self.node_id = node_id
        self.cause = cause
        self.refused = refused
        super().__init__(node_id, cause)

    def __str__(self) -> str:
        return f"node {self.node_id!r} unavailable: {self.cause!r}"


class NoNodesAvailable(NodeError):
    """Raised when no node is available to store a new or relocated session."""

    def __init__(self, causes: dict[str, str]):
        self.causes = causes
        detail = "; ".join(f"{node}: {why}" for node, why in causes.items()) or "no nodes"
        super().__init__(f"no node can store the session ({detail})")


class ItemTooLarge(NodeError):
    """Raised when a node answered that the item is too large to store."""


class SessionTooLarge(MSMError):
    """Raised when a session's stored form is over MAX_SESSION_SIZE; nothing was written."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(
            f"session is {size} bytes after serialization and compression, over the "
            f"MAX_SESSION_SIZE limit of {limit} bytes; the stored copy was left as it was"
        )


class SessionNotSerializable(MSMError):
    """Raised by ``save()`` when SESSION_SERIALIZER cannot encode the session; nothing was written.

    Names the attribute (the top-level session key) whose value fails, never the session key:
    session keys are credentials. ``attribute`` is None when no single attribute fails alone.
    """

    def __init__(self, attribute: str | None, serializer: str, cause: BaseException):
        self.attribute = attribute
        self.cause = cause
        what = "the session" if attribute is None else f"session attribute {attribute!r}"
        super().__init__(
            f"{what} cannot be encoded by {serializer}: {cause}. Store values it can encode "
            "(JSONSerializer: str, int, float, bool, None, lists and dicts of them; e.g. a date "
            "as date.isoformat()); the stored copy was left as it was"
        )


class SessionKeyTaken(MSMError):
    """Raised when a session could not be created under the key it was given (taken)."""


class SessionDeleted(MSMError):
    """Raised when a session that is being updated was deleted meanwhile (not resurrected)."""


class CorruptCopy(MSMError):
    """Raised when stored bytes fail their signature or cannot be decoded."""


class SessionConflict(MSMError):
    """Raised by a save that the session's witness refused: another request committed, moved
    or deleted the session since this one loaded it (its lock lapsed, or it ran unlocked).
    Nothing of this request's changes was stored; the middleware answers 503 with
    ``Retry-After``, and with the new key's cookie when the session moved (``moved_to``)."""

    def __init__(self, moved_to: str | None = None, deleted: bool = False):
        self.moved_to = moved_to
        self.deleted = deleted  # retired without a forward: logged out meanwhile
        reason = "moved" if moved_to else "deleted" if deleted else "changed"
        super().__init__(f"the session was {reason} by another request; this save was refused")


class LockError(MSMError):
    """Raised when a session lock cannot be used."""


class LockTimeout(LockError):
    """Raised when the session lock was not acquired within LOCK_WAIT_TIMEOUT (policy "fail").

    It names the session by its tag (``#3fa9c1``, ``core.keys.key_tag``) and its node, never by
    its key: exception messages end up in logs and error reports, and a key is a credential.
    """

    def __init__(self, tag: str, node_id: str, waited: float):
        self.tag = tag
        self.node_id = node_id
        self.waited = waited
        super().__init__(
            f"session {tag} (node {node_id}) is locked by another request ({waited:.2f} s)"
        )
