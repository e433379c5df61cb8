"""Parsing of MEMCACHED_NODES / FAILOVER_NODES and duplicate-id detection (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_msm.core.nodes import (
    Node,
    NodeKind,
    NodeSpecError,
    duplicate_ids,
    parse_nodes,
    split_spec,
)
from django_msm.exceptions import ConfigurationError


def mc(node_id: str | None, address: str) -> Node:
    return Node(node_id, NodeKind.MEMCACHED, address)


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("n1", ["n1"]),
        ("n1,n2", ["n1", "n2"]),
        ("n1 n2", ["n1", "n2"]),
        (" n1 ,, n2\t\nn3 ", ["n1", "n2", "n3"]),
        (["n1", "n2 n3"], ["n1", "n2", "n3"]),
        (("n1,n2",), ["n1", "n2"]),
        ("", []),
        (" ,\n", []),
        ([], []),
    ],
)
def test_split_spec(value: Any, tokens: list[str]) -> None:
    assert split_spec(value) == tokens


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "expected a string or a list of strings, got NoneType"),
        (5, "expected a string or a list of strings, got int"),
        ({"n1"}, "expected a string or a list of strings, got set"),
        (b"n1", "expected a string or a list of strings, got bytes"),
        (["n1", 2], "expected strings, got 2"),
        (["n1", b"n2"], "expected strings, got b'n2'"),
    ],
)
def test_split_spec_rejects_other_types(value: Any, message: str) -> None:
    with pytest.raises(NodeSpecError) as info:
        split_spec(value)
    assert str(info.value) == message


def test_parse_nodes_keeps_configured_order() -> None:
    expected = (mc("n3", "c:3"), mc("n1", "a:1"), mc("n2", "b:2"))
    assert parse_nodes("n3:c:3,n1:a:1 n2:b:2") == expected


@pytest.mark.parametrize(
    ("spec", "node"),
    [
        ("127.0.0.1:11211", mc(None, "127.0.0.1:11211")),
        ("localhost:1", mc(None, "localhost:1")),
        ("[::1]:11211", mc(None, "[::1]:11211")),
        ("n1:[::1]:11211", mc("n1", "[::1]:11211")),
        ("n1:[2001:db8::7]:65535", mc("n1", "[2001:db8::7]:65535")),
        ("a_B_9:cache.example.com:11211", mc("a_B_9", "cache.example.com:11211")),
    ],
)
def test_parse_single_nodes(spec: str, node: Node) -> None:
    assert parse_nodes(spec) == (node,)


def test_node_label_names_the_node_also_without_id() -> None:
    assert mc("n1", "h:1").label == "n1"
    assert mc(None, "h:1").label == "h:1"


def test_redis_and_cache_forms_are_recognised_as_such() -> None:
    nodes = parse_nodes("r1:redis://h:6379/0 r2:rediss://h:6380 c1:cache:x")
    kinds = [(node.id, node.kind) for node in nodes]
    assert kinds == [("r1", NodeKind.REDIS), ("r2", NodeKind.REDIS), ("c1", NodeKind.CACHE)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no nodes configured"),
        ("n1:h", "cannot parse node 'n1:h'; expected id:host:port"),
        ("n1:h:1:2", "cannot parse node 'n1:h:1:2'; expected id:host:port"),
        ("n1:h:-1", "cannot parse node 'n1:h:-1'; expected id:host:port"),
        ("n1:h:65536", "port out of range in 'n1:h:65536'"),
        ("n1:h:00000", "port out of range in 'n1:h:00000'"),
        (f"{'n' * 33}:h:1", f"cannot parse node '{'n' * 33}:h:1'; expected id:host:port"),
        ("n1:[::1:11211", "cannot parse node 'n1:[::1:11211'; expected id:host:port"),
        ("h:1 n2:h:2", "a node without id is only allowed as the single node"),
    ],
)
def test_parse_nodes_errors_name_the_bad_part(spec: str, message: str) -> None:
    with pytest.raises(NodeSpecError) as info:
        parse_nodes(spec)
    assert str(info.value) == message


def test_node_spec_error_is_a_configuration_error() -> None:
    assert issubclass(NodeSpecError, ConfigurationError)
    assert issubclass(NodeSpecError, ImproperlyConfigured)


@pytest.mark.parametrize(
    ("spec", "dupes"),
    [
        ("n1:a:1,n2:b:2,n3:c:3", []),
        ("n1:a:1,n1:b:2", ["n1"]),
        ("n1:a:1,n1:b:2,n1:c:3", ["n1"]),
        ("n2:a:1,n1:b:2,n1:c:3,n2:d:4", ["n1", "n2"]),
        ("n1:a:1,N1:b:2", []),  # ids are case-sensitive, as in keys
    ],
)
def test_duplicate_ids(spec: str, dupes: list[str]) -> None:
    assert duplicate_ids(parse_nodes(spec)) == dupes


def test_duplicate_ids_ignores_id_less_nodes() -> None:
    assert duplicate_ids([mc(None, "a:1"), mc(None, "b:2")]) == []
