"""What django_msm did in this app instance, written down for the demo to tell as it happens.

``make demo`` sets ``MSM_DEMO_EVENTS`` to a file shared by its app instances; each appends one
JSON line per event, so the narrator (``demo/narration.py``) reads them in the order they
happened across instances. The events are django_msm's public signals (a node quarantined or
back, a session moved or taken over) and its warnings. No session key is ever written: a key
is a credential, so only the node and route it names are kept (``…-n1.app2``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from functools import partial
from typing import Any

from django.conf import settings

from django_msm import signals
from django_msm.core import keys as msm_keys

# A session key anywhere in a message: the random part goes, its node id and route stay.
_KEY_IN_TEXT = re.compile(rf"[a-z0-9]{{{msm_keys.BASE_LENGTH}}}((?:-\w{{1,32}})?(?:\.\w{{1,32}})?)")
# What these loggers say is told by the signals already (node quarantined, node back).
_TOLD_BY_SIGNALS = ("django_msm.core.health",)


def redact(text: str) -> str:
    """``text`` with the random part of every session key replaced by ``…``."""
    return _KEY_IN_TEXT.sub(lambda match: "…" + match.group(1), text)


class EventFile:
    """Appends events, one JSON line per ``os.write`` on an O_APPEND file: lines of several
    processes interleave whole, in the order they were written."""

    def __init__(self, path: str):
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        record = {"t": time.time(), "instance": settings.INSTANCE, "event": event, **fields}
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class WarningEvents(logging.Handler):
    """django_msm's warnings as events (redacted), except those a signal already tells."""

    def __init__(self, events: EventFile):
        super().__init__(logging.WARNING)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_TOLD_BY_SIGNALS):
            return
        try:
            message = redact(record.getMessage())
            self.events.write("warning", logger=record.name, message=message)
        except Exception:
            self.handleError(record)


def _where(key: str) -> dict[str, str | None]:
    sid = msm_keys.parse(key)
    return {"node": None, "route": None} if sid is None else {"node": sid.node_id,
                                                              "route": sid.route}


def _node_down(events: EventFile, node_id: str, error: str, **kwargs: Any) -> None:
    events.write("node_down", node=node_id, error=redact(str(error)))


def _node_up(events: EventFile, node_id: str, **kwargs: Any) -> None:
    events.write("node_up", node=node_id)


def _moved(events: EventFile, event: str, old_key: str, new_key: str, **kwargs: Any) -> None:
    events.write(event, old=_where(old_key), new=_where(new_key))


def install(path: str) -> None:
    """Write this process's events to ``path`` (called once, from ``ShopConfig.ready``)."""
    events = EventFile(path)
    receivers = [
        (signals.node_down, partial(_node_down, events)),
        (signals.node_up, partial(_node_up, events)),
        (signals.session_relocated, partial(_moved, events, "session_moved")),
        (signals.session_taken_over, partial(_moved, events, "session_taken_over")),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False, dispatch_uid=f"demo-narration-{id(signal)}")
    logging.getLogger("django_msm").addHandler(WarningEvents(events))
