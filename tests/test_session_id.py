"""Session keys: ``<32 [a-z0-9]>[-<nodeId>][.<route>]``, parsed before any I/O.

A cookie is attacker-controlled text: anything that is not exactly this format must parse to
None, so that it can never reach a node (memcached's text protocol treats spaces and CR/LF as
separators, so a key like ``x\\r\\nflush_all`` would be a command).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from django_msm.core import keys
from django_msm.core.keys import MAX_KEY_LENGTH, SessionId, new_id, parse

BASE = "k3j0a9x2m4p5q6r7s8t9u0v1w2y3z4b5"
KEY_RE = re.compile(r"\A[a-z0-9]{32}(-[A-Za-z0-9_]+)?(\.[A-Za-z0-9_]+)?\Z")


@pytest.mark.parametrize(
    ("node_id", "route", "suffix"),
    [("n1", None, "-n1"), ("n2", "web1", "-n2.web1"), (None, None, ""), ("N_9", "r", "-N_9.r")],
)
def test_new_id_round_trips_through_parse(
    node_id: str | None, route: str | None, suffix: str
) -> None:
    sid = new_id(node_id, route)
    text = str(sid)
    assert KEY_RE.match(text)
    assert text.endswith(suffix) and len(text) == 32 + len(suffix)
    assert (sid.node_id, sid.route) == (node_id, route)
    assert parse(text) == sid


def test_new_ids_are_random() -> None:
    keys = {new_id("n1").base for _ in range(200)}
    assert len(keys) == 200
    # Every character of the alphabet shows up: the base is not, say, hex.
    assert set("".join(keys)) == set("abcdefghijklmnopqrstuvwxyz0123456789")


def test_new_id_maps_bytes_evenly_and_drops_the_uneven_ones(monkeypatch) -> None:
    """Bytes 252..255 would favour the first four characters: they are dropped, and a short
    draw is topped up with another."""
    draws = iter([b"\xfc\xfd\xfe\xff" * 10 + bytes(range(8)), bytes(range(36, 84))])
    monkeypatch.setattr(keys.secrets, "token_bytes", lambda n: next(draws))
    assert new_id("n1").base == "abcdefgh" + "abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE, SessionId(BASE, None, None)),
        (f"{BASE}-n1", SessionId(BASE, "n1", None)),
        (f"{BASE}-n1.web1", SessionId(BASE, "n1", "web1")),
        (f"{BASE}.web1", SessionId(BASE, None, "web1")),
        (f"{BASE}-{'N' * 32}.{'r' * 32}", SessionId(BASE, "N" * 32, "r" * 32)),
    ],
)
def test_parse_well_formed_keys(text: str, expected: SessionId) -> None:
    assert parse(text) == expected
    assert str(expected) == text


def test_longest_key_the_format_allows() -> None:
    text = f"{BASE}-{'a' * 32}.{'b' * 32}"
    assert len(text) == MAX_KEY_LENGTH == 98
    assert parse(text) is not None


HOSTILE: list[Any] = [
    "",
    " ",
    "abc",
    BASE[:-1],  # 31 chars
    BASE + "a",  # 33 chars, no separator
    BASE.upper(),
    f"{BASE.upper()}-n1",
    f"{BASE[:16]} {BASE[16:]}",
    f"{BASE}-n1 ",
    f" {BASE}-n1",
    f"{BASE}-n1\n",
    f"{BASE}-n1\r\nflush_all",
    f"{BASE}-n1\r\nset x 0 0 1\r\nx",
    f"{BASE}-n1\r\ndelete {BASE}-n2",
    f"{BASE}-n1\x00",
    f"{BASE[:31]}\x00-n1",
    f"{BASE}-n1\t",
    f"{BASE}-né",
    "é" * 32,
    "ａ" * 32,  # full-width letters
    "١" * 32,  # Arabic-Indic digits match \d but are no key
    f"{BASE}-",
    f"{BASE}-.web1",
    f"{BASE}-n1.",
    f"{BASE}-n-1",
    f"{BASE}-n1.web-1",
    f"{BASE}-n1.web1.x",
    f"{BASE}--n1",
    f"{BASE}-{'a' * 33}",
    f"{BASE}-n1.{'r' * 33}",
    "a" * 300,
    f"{BASE}-n1" + "x" * 300,
    f"{BASE}-n1:11211",
    f"bak:{BASE}-n1",
    f"../{BASE}-n1",
    None,
    42,
    b"k3j0a9x2m4p5q6r7s8t9u0v1w2y3z4b5-n1",
    ["k3j0a9x2m4p5q6r7s8t9u0v1w2y3z4b5-n1"],
    SessionId(BASE, "n1", None),  # not a str, even if it prints as a key
]


@pytest.mark.parametrize("key", HOSTILE, ids=repr)
def test_hostile_or_malformed_keys_are_rejected(key: Any) -> None:
    assert parse(key) is None
