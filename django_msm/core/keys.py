"""Session keys and the layout of every key django_msm stores (msm's SessionIdFormat).

A session key is ``<32 chars [a-z0-9]>[-<nodeId>][.<route>]``. Keys are parsed and validated
here, before any I/O, so that a malformed or hostile cookie never reaches a node (msm #279:
unknown node ids were looked up anyway).

``KeyLayout`` is the one place that knows how stored keys are formed from a session key and
``STORAGE_KEY_PREFIX``; every reader and writer (copies, locks, away marks, published
statistics, the inspectors' patterns) asks it.

A session key is a credential: whoever holds it is logged in. It never appears in a log line,
an error message or a metric label; ``key_tag`` gives the short tag that stands in for it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

BASE_LENGTH = 32
BASE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
NAME_PATTERN = r"[A-Za-z0-9_]{1,32}"
NAME_RE = re.compile(rf"\A{NAME_PATTERN}\Z")
# The longest key this format can produce: base, "-", node id, ".", route.
MAX_KEY_LENGTH = BASE_LENGTH + 2 * (1 + 32)
# The session key after the storage prefix: base, then optional node id and route (groups 1, 2).
SESSION_KEY_PATTERN = rf"[a-z0-9]{{{BASE_LENGTH}}}(?:-({NAME_PATTERN}))?(?:\.({NAME_PATTERN}))?"
_KEY_RE = re.compile(
    rf"\A([a-z0-9]{{{BASE_LENGTH}}})(?:-({NAME_PATTERN}))?(?:\.({NAME_PATTERN}))?\Z"
)

BACKUP_PREFIX = "bak:"
LOCK_PREFIX = "lock:"
AWAY_PREFIX = "msm:away:"
STATS_PREFIX = "msm:stats:"
USER_PREFIX = "usr:"
# User ids stored as they are in index keys: what is safe in a memcached key and short enough;
# any other id (spaces, non-ASCII, very long) is stored as a digest, marked by "~".
_PLAIN_USER_ID = re.compile(r"\A[A-Za-z0-9_.@+-]{1,64}\Z")
GENERATION_PREFIX = "msm:gen:"
REPAIR_PREFIX = "msm:repair:"


@dataclass(frozen=True)
class SessionId:
    """A parsed session key."""

    base: str
    node_id: str | None
    route: str | None

    def __str__(self) -> str:
        text = self.base
        if self.node_id is not None:
            text += f"-{self.node_id}"
        if self.route is not None:
            text += f".{self.route}"
        return text


def parse(key: object) -> SessionId | None:
    """Return the parsed key, or None for anything that is not a well-formed key."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
        return None
    match = _KEY_RE.match(key)
    if match is None:
        return None
    return SessionId(*match.groups())


def new_id(node_id: str | None, route: str | None = None) -> SessionId:
    """Return a fresh random key for a session whose primary copy lives on ``node_id``.

    The same alphabet and entropy as Django's ``get_random_string`` (lowercase only: some
    backends store keys case-insensitively), from one ``secrets.token_bytes`` call instead of one
    ``secrets.choice`` per character (46 µs down to about 2 µs on every new session): bytes
    below 252 = 7 × 36 map uniformly onto the alphabet, the four above are dropped.
    """
    base = ""
    while len(base) < BASE_LENGTH:  # 48 bytes keep 32 with odds of failing below 1e-30
        base += secrets.token_bytes(48).translate(_TO_ALPHABET, _UNEVEN).decode("ascii")
    return SessionId(base[:BASE_LENGTH], node_id, route)


# Byte b < 252 becomes BASE_CHARS[b % 36]; 252..255 are deleted, so every character is equally
# likely.
_TO_ALPHABET = bytes(ord(BASE_CHARS[b % len(BASE_CHARS)]) for b in range(256))
_UNEVEN = bytes(range(7 * len(BASE_CHARS), 256))


TAG_BYTES = 3  # 6 hex digits
_TAG_PERSON = b"msm-key-tag"
# Used when no secret is given (tools, hand-built configs): tags then correlate within this
# process only.
PROCESS_TAG_SECRET = secrets.token_bytes(32)


def key_tag(key: SessionId | str, secret: bytes = PROCESS_TAG_SECRET) -> str:
    """Return the tag that stands for a session key in logs and messages: 6 hex digits.

    Why it cannot be turned back into a key: it is a BLAKE2b hash *keyed* with ``secret``, cut
    to 24 bits. Without the secret nobody can compute the tag of a candidate key, so a tag cannot
    even be checked against a guess; and with it, each tag is shared by about 36**32 / 2**24
    (~2**141) possible keys, so a tag names no key and is worth nothing as a cookie.

    Why it still correlates lines: the same key always gives the same tag under one secret. With
    ``MsmConfig.tag_secret`` (derived from ``SECRET_KEY``, which every process of a deployment
    shares) a session has the same tag in the logs of every process; with the default per-process
    secret, within one process. 24 bits make chance collisions rare among the handful of sessions
    a failure writes about at once; the node id next to the tag narrows it further.
    """
    digest = hashlib.blake2b(
        str(key).encode(), key=secret[:64], digest_size=TAG_BYTES, person=_TAG_PERSON
    )
    return digest.hexdigest()


class KeyTag:
    """``key_tag`` computed only when a log record is actually formatted (lazy %-args).

    Prints as ``#<tag>``, so a tag is never mistaken for a key or a node id.
    """

    __slots__ = ("_key", "_secret")

    def __init__(self, key: SessionId | str, secret: bytes = PROCESS_TAG_SECRET):
        self._key = key
        self._secret = secret

    def __str__(self) -> str:
        return f"#{key_tag(self._key, self._secret)}"

    __repr__ = __str__


@dataclass(frozen=True)
class KeyLayout:
    """Every stored key form, for one ``STORAGE_KEY_PREFIX`` (already built, e.g. ``"x_"``).

    * ``<prefix><key>``            the primary copy (or its tombstone)
    * ``bak:<prefix><key>``        the backup copy (or its tombstone; a relocation's names the
                                   new key: the forward)
    * ``lock:<prefix><key>``       the session lock
    * ``msm:away:<prefix><node>``  when a node was last seen away (AwayMarks)
    * ``msm:stats:<prefix><name>`` a process's published statistics
    * ``usr:<prefix><user id>``    a user's index of sessions (``core.user_index``)
    * ``bak:usr:<prefix><user id>`` its backup copy
    * ``msm:gen:<prefix>``         the node's generation: gone when the node lost its data
    * ``msm:repair:<prefix><name>`` repair's state record, lease and progress (ops.repair)
    """

    prefix: str = ""

    def primary(self, sid: SessionId) -> str:
        return f"{self.prefix}{sid}"

    def backup(self, sid: SessionId) -> str:
        return f"{BACKUP_PREFIX}{self.prefix}{sid}"

    def lock(self, sid: SessionId) -> str:
        return f"{LOCK_PREFIX}{self.prefix}{sid}"

    def away(self, node_label: str) -> str:
        return f"{AWAY_PREFIX}{self.prefix}{node_label}"

    def stats(self, name: str) -> str:
        return f"{STATS_PREFIX}{self.prefix}{name}"

    def user(self, user_id: str) -> str:
        return f"{USER_PREFIX}{self.prefix}{_user_part(user_id)}"

    def user_backup(self, user_id: str) -> str:
        return f"{BACKUP_PREFIX}{self.user(user_id)}"

    def generation(self) -> str:
        return f"{GENERATION_PREFIX}{self.prefix}"

    def repair(self, name: str) -> str:
        return f"{REPAIR_PREFIX}{self.prefix}{name}"


def _user_part(user_id: str) -> str:
    if _PLAIN_USER_ID.match(user_id):
        return user_id
    return "~" + hashlib.sha256(user_id.encode()).hexdigest()[:40]
