"""An optional faster session serializer on orjson, for large sessions.

    SESSION_SERIALIZER = "django_msm.serializers.OrjsonSerializer"  # pip install django-msm[orjson]

It writes JSON through orjson, several times faster than the standard library for large sessions,
and reads both its own output and what Django's ``JSONSerializer`` wrote before the switch.

What it stores is plain JSON with one leading space, a mark that says "orjson wrote this and
orjson reads it back exactly". Anything orjson will not write exactly (integers beyond 64 bits,
keys that are not strings, subclasses of the JSON types, dates) goes through Django's own
``JSONSerializer`` instead, unmarked, and everything unmarked is read back through it too: such
values behave as they do with Django's serializer, errors included. Two differences remain,
both in what orjson itself accepts: ``uuid.UUID`` and ``enum.Enum`` values are stored as their
string and value (Django's serializer rejects them), and a float NaN or infinity becomes
``null``. Non-ASCII text is stored as UTF-8, not as ``\\u`` escapes; going back to Django's
serializer later would misread it (its reader decodes bytes as Latin-1), so stay or flush.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.core.signing import JSONSerializer

# Dates and dataclasses, and subclasses of str, int, dict and list, are handed to ``default``,
# which is left unset: orjson then refuses them and Django's serializer decides.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_OPTIONS |= orjson.OPT_PASSTHROUGH_SUBCLASS
_MARK = b" "  # JSON allows leading whitespace; neither serializer ever writes one


class OrjsonSerializer:
    """Session serializer on orjson, falling back to Django's ``JSONSerializer``."""

    def dumps(self, obj: Any) -> bytes:
        try:
            return _MARK + orjson.dumps(obj, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: not a value orjson writes exactly
            return JSONSerializer().dumps(obj)

    def loads(self, data: bytes) -> Any:
        if data[:1] == _MARK:
            return orjson.loads(data)
        return JSONSerializer().loads(data)
