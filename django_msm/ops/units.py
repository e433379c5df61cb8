"""How figures read, in ``msm_status``'s text and on the admin's cluster page alike."""

from __future__ import annotations

import math


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 session``, ``2 sessions``; ``nouns`` for irregular plurals (``1 copy``, ``2 copies``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def size(value: float | None) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 MiB``; ``-`` when unknown."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"  # unreachable


def duration(value: float | None) -> str:
    """Seconds as a timing reads: ``250 us``, ``5 ms``, ``1.2 s``."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    if value < 1e-3:
        return f"{value * 1e6:g} us"
    return f"{value * 1e3:g} ms" if value < 1 else f"{value:g} s"


def uptime(seconds: int | None) -> str:
    """A server's uptime at a glance: ``2d 7h``, ``1h 2m``, ``3m 5s``."""
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def age(seconds: float) -> str:
    """How long ago: ``3.2 s`` under a minute, else whole minutes."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


def latency(milliseconds: float | None) -> str:
    return "-" if milliseconds is None else f"{milliseconds:.2f} ms"
