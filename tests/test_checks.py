"""System checks of DJANGO_MSM: every id, with its exact message and hint written out.

Messages are spelled out here rather than built from ``checks.E00x`` so that a changed message
fails a test (users grep for them, docs quote them). E010 (node kinds) is left to the Redis work.
``reports`` gives every setting two nodes unless the test names its own ``MEMCACHED_NODES``: the
default is a single node, which W028 warns about, and most tests are about something else.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.checks import CheckMessage, Error, Warning, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_msm import checks
from django_msm.core.nodes import NodeKind
from django_msm.exceptions import ConfigurationError
from django_msm.runtime import get_config

NODES = "n1:127.0.0.1:11211,n2:127.0.0.1:11212"
KNOWN_KEYS = (
    "Known keys: MEMCACHED_NODES, FAILOVER_NODES, STICKY, ROUTE, REQUEST_URI_IGNORE_PATTERN, "
    "SESSION_BACKUP_ASYNC, BACKUP_THREAD_COUNT, BACKUP_QUEUE_SIZE, SESSION_BACKUP_TIMEOUT, "
    "OPERATION_TIMEOUT, STORAGE_KEY_PREFIX, ENABLED, MAX_SESSION_SIZE, COMPRESS_MIN_SIZE, "
    "RETRY_TIMEOUT, RETRY_ATTEMPTS, LOCAL_CACHE_ENTRIES, LOCAL_CACHE_BYTES, HOST_VERSION_SLOTS, "
    "HOST_VERSION_TRUST, LOCKING_MODE, "
    "LOCK_EXPIRATION, LOCK_WAIT_TIMEOUT, LOCK_TIMEOUT_POLICY, ENABLE_STATISTICS, "
    "SESSION_ATTRIBUTE_FILTER, USER_SESSIONS, USER_SESSIONS_RECORD_IP, "
    "USER_SESSIONS_RECORD_USER_AGENT, USER_SESSIONS_TOUCH_INTERVAL, USER_SESSIONS_MAX, "
    "END_SESSIONS_ON_PASSWORD_CHANGE, AUTO_REPAIR, REPAIR_RATE, DRAINING_NODES, RETIRED_NODES."
)


def reports(msm: Any, two_nodes: bool = True) -> list[CheckMessage]:
    """Return what both the validator and Django's check framework say about ``msm`` (with
    ``NODES`` unless it names its own, or ``two_nodes`` is False)."""
    if two_nodes and isinstance(msm, dict):
        msm = {"MEMCACHED_NODES": NODES, **msm}
    with override_settings(DJANGO_MSM=msm):
        found = checks.validate()
        assert run_checks(tags=["django_msm"]) == found
    return found


def e003(value: Any, error: str) -> Error:
    return Error(
        f"DJANGO_MSM['MEMCACHED_NODES'] = {value!r} is invalid: {error}.",
        hint="Use 'id:host:port' entries separated by commas, or a single 'host:port'.",
        id="django_msm.E003",
    )


def e008(key: str, value: Any) -> Error:
    return Error(
        f"DJANGO_MSM[{key!r}] must be a positive number of seconds, not {value!r}.",
        hint="Use a duration in seconds greater than 0, such as 1.0.",
        id="django_msm.E008",
    )


def e011(key: str, value: Any) -> Error:
    return Error(
        f"DJANGO_MSM[{key!r}] must be a positive integer, not {value!r}.",
        hint="Use a whole number greater than 0.",
        id="django_msm.E011",
    )


# -- good configurations ---------------------------------------------------------------------
def test_project_test_settings_pass() -> None:
    assert run_checks(tags=["django_msm"]) == []


def test_every_key_set_to_a_valid_value_passes() -> None:
    msm = {
        "MEMCACHED_NODES": "n1:127.0.0.1:11211,n2:127.0.0.1:11212,n3:127.0.0.1:11213",
        "FAILOVER_NODES": "n3",
        "OPERATION_TIMEOUT": 0.25,
        "STORAGE_KEY_PREFIX": "static:shop static:v2",
        "MAX_SESSION_SIZE": 500_000,
        "COMPRESS_MIN_SIZE": 1,
        "RETRY_TIMEOUT": 5,
        "RETRY_ATTEMPTS": 1,
        "STICKY": True,
        "ROUTE": "web_1",
        "REQUEST_URI_IGNORE_PATTERN": r"^/static/",
        "SESSION_BACKUP_ASYNC": True,
        "BACKUP_THREAD_COUNT": 4,
        "BACKUP_QUEUE_SIZE": 10,
        "SESSION_BACKUP_TIMEOUT": 0.5,
        "ENABLED": True,
        "LOCAL_CACHE_ENTRIES": 100,
        "LOCAL_CACHE_BYTES": 1024,
        "LOCKING_MODE": "uriPattern:^/cart/",
        "LOCK_EXPIRATION": 3,
        "LOCK_WAIT_TIMEOUT": 3.5,
        "LOCK_TIMEOUT_POLICY": "proceed",
        "SESSION_ATTRIBUTE_FILTER": None,
        "ENABLE_STATISTICS": True,
        "USER_SESSIONS": True,
        "USER_SESSIONS_RECORD_IP": True,
        "USER_SESSIONS_RECORD_USER_AGENT": False,
        "USER_SESSIONS_TOUCH_INTERVAL": 60,
        "USER_SESSIONS_MAX": 20,
        "END_SESSIONS_ON_PASSWORD_CHANGE": True,
        "AUTO_REPAIR": False,
        "REPAIR_RATE": 500,
        "DRAINING_NODES": "n2",
        "RETIRED_NODES": "n0 old_4",
    }
    assert reports(msm) == []


def w028() -> Warning:
    return Warning(
        "DJANGO_MSM['MEMCACHED_NODES'] has a single node: sessions have no backup copy.",
        hint="Configure two or more nodes as 'id:host:port' (or 'id:cache:ALIAS'), on separate "
        "machines: with one node, every session is lost when it fails, and writes made while "
        "it fails over are dropped.",
        id="django_msm.W028",
    )


def test_empty_dict_uses_defaults_and_warns_of_the_single_node() -> None:
    assert reports({}, two_nodes=False) == [w028()]


TWO = [("n1", "10.0.0.1:11211"), ("n2", "10.0.0.2:11211")]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("n1:10.0.0.1:11211,n2:10.0.0.2:11211", TWO),
        ("n1:10.0.0.1:11211 n2:10.0.0.2:11211", TWO),
        ("n1:10.0.0.1:11211, n2:10.0.0.2:11211", TWO),
        ("\n  n1:10.0.0.1:11211\n\tn2:10.0.0.2:11211\n", TWO),
        (["n1:10.0.0.1:11211", "n2:10.0.0.2:11211"], TWO),
        (("n1:a:1", "n2:b:2 n3:c:3"), [("n1", "a:1"), ("n2", "b:2"), ("n3", "c:3")]),
        ("127.0.0.1:11211", [(None, "127.0.0.1:11211")]),
        ("cache-1.example.com:11211", [(None, "cache-1.example.com:11211")]),
        ("[::1]:11211", [(None, "[::1]:11211")]),
        ("n1:[::1]:11211,n2:[fe80::1]:11212", [("n1", "[::1]:11211"), ("n2", "[fe80::1]:11212")]),
        ("node_A:memcached-a.internal:65535", [("node_A", "memcached-a.internal:65535")]),
    ],
)
def test_memcached_node_forms_of_design_parse(spec: Any, expected: list[tuple]) -> None:
    assert reports({"MEMCACHED_NODES": spec}) == ([w028()] if len(expected) == 1 else [])
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": spec}):
        nodes = get_config().nodes
    assert [(node.id, node.address) for node in nodes] == expected
    assert {node.kind for node in nodes} == {NodeKind.MEMCACHED}


# -- E001 / E002 -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["n1:127.0.0.1:11211", ["n1:127.0.0.1:11211"], None, 42])
def test_e001_setting_not_a_dict(value: Any) -> None:
    assert reports(value) == [
        Error(
            f"DJANGO_MSM must be a dict, not {value!r}.",
            hint="Set DJANGO_MSM = {'MEMCACHED_NODES': 'n1:host1:11211,n2:host2:11211'}.",
            id="django_msm.E001",
        )
    ]


def test_e002_unknown_keys_each_reported() -> None:
    assert reports({"MEMCACHED_NODES": NODES, "NODES": "x", "memcached_nodes": NODES}) == [
        Error("DJANGO_MSM has unknown key 'NODES'.", hint=KNOWN_KEYS, id="django_msm.E002"),
        Error(
            "DJANGO_MSM has unknown key 'memcached_nodes'.",
            hint="Did you mean 'MEMCACHED_NODES'? " + KNOWN_KEYS,
            id="django_msm.E002",
        ),
    ]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("MEMCACHE_NODES", "MEMCACHED_NODES"),
        ("FAILOVER_NODE", "FAILOVER_NODES"),
        ("RETRY_TIMOUT", "RETRY_TIMEOUT"),
        ("Sticky", "STICKY"),
        ("LOCK_TIMEOUT_POLICIES", "LOCK_TIMEOUT_POLICY"),
    ],
)
def test_e002_did_you_mean_the_nearest_key(typo: str, meant: str) -> None:
    assert reports({typo: 1}) == [
        Error(
            f"DJANGO_MSM has unknown key {typo!r}.",
            hint=f"Did you mean {meant!r}? " + KNOWN_KEYS,
            id="django_msm.E002",
        )
    ]


def test_e002_a_key_that_is_not_a_string() -> None:
    assert reports({5: "x"}) == [
        Error("DJANGO_MSM has unknown key 5.", hint=KNOWN_KEYS, id="django_msm.E002")
    ]


# -- E003: MEMCACHED_NODES that do not parse ------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("n1:127.0.0.1", "cannot parse node 'n1:127.0.0.1'; expected id:host:port"),
        ("n1:127.0.0.1:", "cannot parse node 'n1:127.0.0.1:'; expected id:host:port"),
        ("n1:127.0.0.1:http", "cannot parse node 'n1:127.0.0.1:http'; expected id:host:port"),
        ("n1:127.0.0.1:123456", "cannot parse node 'n1:127.0.0.1:123456'; expected id:host:port"),
        ("n1:127.0.0.1:70000", "port out of range in 'n1:127.0.0.1:70000'"),
        ("n1:127.0.0.1:0", "port out of range in 'n1:127.0.0.1:0'"),
        ("127.0.0.1:99999", "port out of range in '127.0.0.1:99999'"),
        ("!!garbage!!", "cannot parse node '!!garbage!!'; expected id:host:port"),
        ("n-1:127.0.0.1:11211", "cannot parse node 'n-1:127.0.0.1:11211'; expected id:host:port"),
        ("n1:a b:1", "cannot parse node 'n1:a'; expected id:host:port"),
        ("n1:h:1\x00", "cannot parse node 'n1:h:1\\x00'; expected id:host:port"),
        (
            "n1:127.0.0.1:11211,127.0.0.1:11212",
            "a node without id is only allowed as the single node",
        ),
        (
            "127.0.0.1:11211 127.0.0.1:11212",
            "a node without id is only allowed as the single node",
        ),
        ("", "no nodes configured"),
        (" , ", "no nodes configured"),
        ([], "no nodes configured"),
        (11211, "expected a string or a list of strings, got int"),
        ({"n1": "127.0.0.1:11211"}, "expected a string or a list of strings, got dict"),
        (["n1:127.0.0.1:11211", None], "expected strings, got None"),
    ],
)
def test_e003_unparseable_nodes(spec: Any, error: str) -> None:
    assert reports({"MEMCACHED_NODES": spec}) == [e003(spec, error)]


def test_e003_stops_the_node_checks_but_not_the_others() -> None:
    found = reports({"MEMCACHED_NODES": "n1:h", "FAILOVER_NODES": "zz", "RETRY_ATTEMPTS": 0})
    assert found == [
        e003("n1:h", "cannot parse node 'n1:h'; expected id:host:port"),
        e011("RETRY_ATTEMPTS", 0),
    ]


# -- E004 - E007: node ids and failover nodes ---------------------------------------------------
def test_e004_duplicate_ids_reported_once_each_in_order() -> None:
    spec = "n2:h:1,n1:h:2,n1:h:3,n2:h:4,n1:h:5"
    hint, id_ = "Give every node its own id.", "django_msm.E004"
    assert reports({"MEMCACHED_NODES": spec}) == [
        Error("DJANGO_MSM['MEMCACHED_NODES'] repeats node id 'n1'.", hint=hint, id=id_),
        Error("DJANGO_MSM['MEMCACHED_NODES'] repeats node id 'n2'.", hint=hint, id=id_),
    ]


@pytest.mark.parametrize(
    ("failover", "unknown"),
    [("n3", ["n3"]), ("n3,n4", ["n3", "n4"]), (["n1", "n3"], ["n3"]), ("n1 n2 n3", ["n3"])],
)
def test_e005_unknown_failover_id_lists_the_ids(failover: Any, unknown: list[str]) -> None:
    assert reports({"MEMCACHED_NODES": NODES, "FAILOVER_NODES": failover}) == [
        Error(
            f"DJANGO_MSM['FAILOVER_NODES'] names unknown node {node_id!r}.",
            hint="Use ids from MEMCACHED_NODES: 'n1', 'n2'.",
            id="django_msm.E005",
        )
        for node_id in unknown
    ]


@pytest.mark.parametrize(("typo", "meant"), [("N2", "n2"), ("web_02", "web_2")])
def test_e005_near_miss_gets_a_did_you_mean(typo: str, meant: str) -> None:
    nodes = "web_1:127.0.0.1:11211,web_2:127.0.0.1:11212,n2:127.0.0.1:11213"
    assert reports({"MEMCACHED_NODES": nodes, "FAILOVER_NODES": typo}) == [
        Error(
            f"DJANGO_MSM['FAILOVER_NODES'] names unknown node {typo!r}.",
            hint=f"Did you mean {meant!r}? Use ids from MEMCACHED_NODES: 'web_1', 'web_2', 'n2'.",
            id="django_msm.E005",
        )
    ]


@pytest.mark.parametrize("failover", ["n1,n2", "n2 n1", ["n1", "n2", "n1"]])
def test_e006_all_nodes_failover(failover: Any) -> None:
    assert reports({"MEMCACHED_NODES": NODES, "FAILOVER_NODES": failover}) == [
        Error(
            f"DJANGO_MSM['FAILOVER_NODES'] = {failover!r} lists every node.",
            hint="Leave at least one regular node out of FAILOVER_NODES.",
            id="django_msm.E006",
        )
    ]


@pytest.mark.parametrize(
    ("nodes", "failover"),
    [("n1:127.0.0.1:11211", "n1"), ("127.0.0.1:11211", "n1"), ("[::1]:11211", "x")],
)
def test_e007_failover_with_a_single_node(nodes: str, failover: str) -> None:
    assert reports({"MEMCACHED_NODES": nodes, "FAILOVER_NODES": failover}) == [
        Error(
            f"DJANGO_MSM['FAILOVER_NODES'] = {failover!r} needs two or more MEMCACHED_NODES "
            "with ids.",
            hint="Configure two or more nodes as 'id:host:port'.",
            id="django_msm.E007",
        )
    ]


def test_e017_failover_nodes_of_wrong_type() -> None:
    """FAILOVER_NODES=5 is a problem of FAILOVER_NODES, not of MEMCACHED_NODES (was E003)."""
    assert reports({"MEMCACHED_NODES": NODES, "FAILOVER_NODES": 5}) == [
        Error(
            "DJANGO_MSM['FAILOVER_NODES'] = 5 is invalid: expected a string or a list of "
            "strings, got int.",
            hint="Use node ids separated by commas, such as 'n1', or a list of ids.",
            id="django_msm.E017",
        )
    ]


# -- E008 / E011: numbers --------------------------------------------------------------------
BAD_DURATIONS = [0, 0.0, -1, -0.5, "1.0", True, False, None, math.nan, [1.0]]


DURATIONS = [
    "OPERATION_TIMEOUT", "RETRY_TIMEOUT", "SESSION_BACKUP_TIMEOUT", "LOCK_EXPIRATION",
]


@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize("value", BAD_DURATIONS, ids=repr)
def test_e008_bad_durations(key: str, value: Any) -> None:
    assert reports({key: value}) == [e008(key, value)]


@pytest.mark.parametrize("key", DURATIONS)
def test_e008_infinite_duration_is_not_a_bound(key: str) -> None:
    """inf passes ``> 0`` but is no bound: sockets reject it (OverflowError) (bug: accepted)."""
    assert reports({key: math.inf}) == [e008(key, math.inf)]


@pytest.mark.parametrize("value", [0, -1, "1.0", True, math.nan], ids=repr)
def test_e008_lock_wait_timeout(value: Any) -> None:
    assert reports({"LOCK_WAIT_TIMEOUT": value}) == [e008("LOCK_WAIT_TIMEOUT", value)]


@pytest.mark.parametrize(("wait", "expiration"), [(None, None), (5, None), (8.5, None), (2, 2.0)])
def test_good_lock_wait_timeout(wait: Any, expiration: Any) -> None:
    msm = {"LOCK_WAIT_TIMEOUT": wait}
    if expiration is not None:
        msm["LOCK_EXPIRATION"] = expiration
    assert reports(msm) == []


@pytest.mark.parametrize(("wait", "expiration"), [(0.2, 5.0), (3, 5.0), (1.0, 2.5)])
def test_w027_lock_wait_shorter_than_a_lock_may_be_held(wait: float, expiration: float) -> None:
    """A lock is legitimately held up to LOCK_EXPIRATION; shorter waits answer 503 (issue 12)."""
    assert reports({"LOCK_WAIT_TIMEOUT": wait, "LOCK_EXPIRATION": expiration}) == [
        Warning(
            f"DJANGO_MSM['LOCK_WAIT_TIMEOUT'] ({wait} s) is shorter than LOCK_EXPIRATION "
            f"({expiration} s).",
            hint="A request may hold its session lock for up to LOCK_EXPIRATION; others of the "
            "same user wait at most LOCK_WAIT_TIMEOUT, then answer 503 (or run unlocked). Leave "
            "LOCK_WAIT_TIMEOUT unset (it follows LOCK_EXPIRATION) or raise it.",
            id="django_msm.W027",
        )
    ]


@pytest.mark.parametrize(("msm", "wait"), [
    ({}, 5.0),
    ({"LOCK_EXPIRATION": 8}, 8.0),
    ({"LOCK_EXPIRATION": 2.0, "OPERATION_TIMEOUT": 0.25}, 2.0),
    ({"LOCK_EXPIRATION": 2.0, "LOCK_WAIT_TIMEOUT": 3}, 3.0),
])
def test_lock_wait_defaults_to_lock_expiration(msm: dict[str, Any], wait: float) -> None:
    """It was OPERATION_TIMEOUT (1 s), shorter than a lock may be held (5 s): 503s under load."""
    with override_settings(DJANGO_MSM=msm):
        assert get_config().lock_wait == wait


@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize("value", [1, 0.001, 30.0])
def test_good_durations(key: str, value: float) -> None:
    assert reports({key: value}) == []


POSITIVE_INTS = [
    "MAX_SESSION_SIZE", "COMPRESS_MIN_SIZE", "RETRY_ATTEMPTS", "BACKUP_QUEUE_SIZE",
    "LOCAL_CACHE_ENTRIES", "LOCAL_CACHE_BYTES",
]


@pytest.mark.parametrize("key", POSITIVE_INTS)
@pytest.mark.parametrize("value", [0, -5, 1.5, 2.0, "10", True, None], ids=repr)
def test_e011_bad_positive_ints(key: str, value: Any) -> None:
    assert reports({key: value}) == [e011(key, value)]


@pytest.mark.parametrize("value", [0, -1, 2.0, "4", True])
def test_e011_backup_thread_count(value: Any) -> None:
    assert reports({"BACKUP_THREAD_COUNT": value}) == [e011("BACKUP_THREAD_COUNT", value)]


@pytest.mark.parametrize("value", [None, 1, 64])
def test_good_backup_thread_count(value: Any) -> None:
    assert reports({"BACKUP_THREAD_COUNT": value}) == []


def test_number_errors_come_in_key_order() -> None:
    found = reports({"RETRY_ATTEMPTS": 0, "OPERATION_TIMEOUT": -1, "MAX_SESSION_SIZE": "1"})
    assert found == [
        e008("OPERATION_TIMEOUT", -1), e011("MAX_SESSION_SIZE", "1"), e011("RETRY_ATTEMPTS", 0)
    ]


# -- E009: STORAGE_KEY_PREFIX ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "tokens"),
    [
        ("host", ["host"]),
        ("context webappVersion", ["context", "webappVersion"]),
        ("static:", ["static:"]),
        ("static:shop,webappVersion", ["webappVersion"]),
        ("static:a/b", ["static:a/b"]),
        ("static:a:b", ["static:a:b"]),
        ("static:" + "a" * 65, ["static:" + "a" * 65]),
        ("STATIC:shop", ["STATIC:shop"]),
        (5, ["5"]),
        (None, ["None"]),
    ],
)
def test_e009_bad_prefix_tokens(prefix: Any, tokens: list[str]) -> None:
    assert reports({"STORAGE_KEY_PREFIX": prefix}) == [
        Error(
            f"DJANGO_MSM['STORAGE_KEY_PREFIX'] has unsupported token {token!r}.",
            hint="Use 'static:<name>' tokens of letters, digits, '_', '.' and '-'.",
            id="django_msm.E009",
        )
        for token in tokens
    ]


@pytest.mark.parametrize("prefix", ["", "static:shop", "static:a.b-c_1 static:v2", "static:x,"])
def test_good_prefixes(prefix: str) -> None:
    assert reports({"STORAGE_KEY_PREFIX": prefix}) == []


def test_e018_prefix_too_long_for_memcached_keys() -> None:
    """memcached keys stop at 250 bytes; ``lock:`` + prefix + a 98-char key must fit (was
    unchecked, so every operation failed client-side and quarantined every node)."""
    prefix = " ".join(f"static:{letter * 64}" for letter in "abc")
    assert reports({"STORAGE_KEY_PREFIX": prefix}) == [
        Error(
            "DJANGO_MSM['STORAGE_KEY_PREFIX'] = 'static:aaaaaaaaaaaaaaaaaaaa..."
            "cccccccccccccccccccccccccccc' makes a prefix of 195 characters; the limit is 147.",
            hint="Use shorter 'static:<name>' tokens: memcached keys stop at 250 bytes.",
            id="django_msm.E018",
        )
    ]


# -- E022 / E026: statistics switch and attribute filter ----------------------------------------
@pytest.mark.parametrize("value", [None, 0, 1, "yes"], ids=repr)
def test_e022_enable_statistics_must_be_a_bool(value: Any) -> None:
    assert reports({"MEMCACHED_NODES": NODES, "ENABLE_STATISTICS": value}) == [
        Error(
            f"DJANGO_MSM['ENABLE_STATISTICS'] must be True or False, not {value!r}.",
            hint="Use a bool.",
            id="django_msm.E022",
        )
    ]


def test_e026_attribute_filter_must_compile() -> None:
    assert reports({"MEMCACHED_NODES": NODES, "SESSION_ATTRIBUTE_FILTER": "cart("}) == [
        Error(
            "DJANGO_MSM['SESSION_ATTRIBUTE_FILTER'] = 'cart(' is not a valid regex: missing ), "
            "unterminated subpattern at position 4.",
            hint="Use a Python regex matched against whole session key names, such as "
            "'cart|user_.*'.",
            id="django_msm.E026",
        )
    ]


# -- per-user sessions: E008 / E011 / E022 / E029 ---------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "USER_SESSIONS", "USER_SESSIONS_RECORD_IP", "USER_SESSIONS_RECORD_USER_AGENT",
        "END_SESSIONS_ON_PASSWORD_CHANGE",
    ],
)
def test_e022_user_sessions_switches_must_be_bools(key: str) -> None:
    assert reports({"MEMCACHED_NODES": NODES, key: "yes"}) == [
        Error(f"DJANGO_MSM[{key!r}] must be True or False, not 'yes'.", hint="Use a bool.",
              id="django_msm.E022")
    ]


@pytest.mark.parametrize("value", [0, -5, "300", math.inf], ids=repr)
def test_e008_user_sessions_touch_interval(value: Any) -> None:
    msm = {"MEMCACHED_NODES": NODES, "USER_SESSIONS_TOUCH_INTERVAL": value}
    assert reports(msm) == [e008("USER_SESSIONS_TOUCH_INTERVAL", value)]


@pytest.mark.parametrize("value", [0, 2.5, "100", True], ids=repr)
def test_e011_user_sessions_max(value: Any) -> None:
    assert reports({"MEMCACHED_NODES": NODES, "USER_SESSIONS_MAX": value}) == [
        e011("USER_SESSIONS_MAX", value)
    ]


def test_e027_ending_sessions_on_password_change_needs_the_index() -> None:
    msm = {"USER_SESSIONS": False, "END_SESSIONS_ON_PASSWORD_CHANGE": True}
    assert reports(msm) == [
        Error(
            "DJANGO_MSM['END_SESSIONS_ON_PASSWORD_CHANGE'] needs USER_SESSIONS.",
            hint="Set USER_SESSIONS to True, or END_SESSIONS_ON_PASSWORD_CHANGE to False.",
            id="django_msm.E029",
        )
    ]
    assert reports({"USER_SESSIONS": False}) == []


def test_user_sessions_settings_reach_the_config() -> None:
    msm = {
        "USER_SESSIONS_RECORD_IP": True, "USER_SESSIONS_RECORD_USER_AGENT": False,
        "USER_SESSIONS_TOUCH_INTERVAL": 30, "USER_SESSIONS_MAX": 7,
        "END_SESSIONS_ON_PASSWORD_CHANGE": True,
    }
    with override_settings(DJANGO_MSM=msm):
        config = get_config()
    assert (config.user_sessions, config.record_ip, config.record_user_agent) == (
        True, True, False)
    assert (config.user_touch_interval, config.user_sessions_max) == (30.0, 7)
    assert config.end_sessions_on_password_change is True
    assert config.user_field == "_auth_user_id"
    with override_settings(DJANGO_MSM={}):
        defaults = get_config()
    assert (defaults.user_sessions, defaults.record_ip, defaults.record_user_agent) == (
        True, False, True)
    assert defaults.end_sessions_on_password_change is False


# -- E020 - E022: request-scoped keys -----------------------------------------------------------
@pytest.mark.parametrize("route", ["", "web-1", "web.1", "wéb", "r" * 33, 5, b"web1"], ids=repr)
def test_e020_bad_route(route: Any) -> None:
    assert reports({"ROUTE": route}) == [
        Error(
            f"DJANGO_MSM['ROUTE'] must be None or letters, digits and '_' (max 32), not {route!r}.",
            hint="Use the instance name the load balancer routes on, such as 'web1'.",
            id="django_msm.E020",
        )
    ]


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("(", "missing ), unterminated subpattern at position 0"),
        ("*.png", "nothing to repeat at position 0"),
        (5, "first argument must be string or compiled pattern"),
    ],
)
def test_e021_bad_ignore_pattern(pattern: Any, error: str) -> None:
    assert reports({"REQUEST_URI_IGNORE_PATTERN": pattern}) == [
        Error(
            f"DJANGO_MSM['REQUEST_URI_IGNORE_PATTERN'] = {pattern!r} is not a valid regex: "
            f"{error}.",
            hint="Use a Python regex matched against request.path, such as r'\\.(css|js|png)$'.",
            id="django_msm.E021",
        )
    ]


@pytest.mark.parametrize("key", ["STICKY", "SESSION_BACKUP_ASYNC", "ENABLED"])
@pytest.mark.parametrize("value", [0, 1, "yes", "False", None], ids=repr)
def test_e022_bool_keys(key: str, value: Any) -> None:
    assert reports({key: value}) == [
        Error(
            f"DJANGO_MSM[{key!r}] must be True or False, not {value!r}.",
            hint="Use a bool.",
            id="django_msm.E022",
        )
    ]


def test_request_scoped_errors_come_last() -> None:
    found = reports({"ENABLED": "no", "ROUTE": "a-b", "RETRY_ATTEMPTS": 0})
    assert [message.id for message in found] == [
        "django_msm.E011", "django_msm.E022", "django_msm.E020"
    ]


# -- E023 - E025: locking ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode", ["sometimes", "All", "uriPattern", "all:/cart", "none:", "", None, 5], ids=repr
)
def test_e023_bad_locking_mode(mode: Any) -> None:
    assert reports({"LOCKING_MODE": mode}) == [
        Error(
            f"DJANGO_MSM['LOCKING_MODE'] is invalid: {mode!r}.",
            hint="Use 'none', 'all', 'auto' or 'uriPattern:<regex>'.",
            id="django_msm.E023",
        )
    ]


@pytest.mark.parametrize("mode", ["none", "all", "auto", "uriPattern:^/cart/", "uriPattern:"])
def test_good_locking_modes(mode: str) -> None:
    assert reports({"LOCKING_MODE": mode}) == []


def test_e024_bad_uri_pattern() -> None:
    assert reports({"LOCKING_MODE": "uriPattern:(cart"}) == [
        Error(
            "DJANGO_MSM['LOCKING_MODE'] = 'uriPattern:(cart': the uriPattern is not a valid "
            "regex: missing ), unterminated subpattern at position 0.",
            hint="Use a Python regex searched in request.path, such as 'uriPattern:^/cart/'.",
            id="django_msm.E024",
        )
    ]


@pytest.mark.parametrize("policy", ["wait", "FAIL", None, True])
def test_e025_bad_lock_timeout_policy(policy: Any) -> None:
    assert reports({"LOCK_TIMEOUT_POLICY": policy}) == [
        Error(
            f"DJANGO_MSM['LOCK_TIMEOUT_POLICY'] must be 'fail' or 'proceed', not {policy!r}.",
            hint="Use 'fail' (answer 503 with Retry-After) or 'proceed' (run unlocked, warn).",
            id="django_msm.E025",
        )
    ]


# -- conf.get_config ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("msm", "text"),
    [
        (
            {"OPERATION_TIMEOUT": 0},
            "django_msm.E008: DJANGO_MSM['OPERATION_TIMEOUT'] must be a positive number of "
            "seconds, not 0. (Use a duration in seconds greater than 0, such as 1.0.)",
        ),
        ("n1:h:1", "django_msm.E001: DJANGO_MSM must be a dict, not 'n1:h:1'."),
        (
            {"MEMCACHED_NODES": "n1:h:1,n1:h:2"},
            "django_msm.E004: DJANGO_MSM['MEMCACHED_NODES'] repeats node id 'n1'.",
        ),
    ],
)
def test_get_config_raises_naming_the_check_id(msm: Any, text: str) -> None:
    with override_settings(DJANGO_MSM=msm), pytest.raises(ConfigurationError) as info:
        get_config()
    assert str(info.value).startswith(text)
    assert isinstance(info.value, ImproperlyConfigured)


def test_get_config_is_re_read_after_override_settings() -> None:
    before = get_config()
    assert [node.id for node in before.nodes] == ["n1", "n2"]
    assert get_config() is before  # cached while nothing changes
    msm = {"MEMCACHED_NODES": "a:h:1,b:h:2,c:h:3", "FAILOVER_NODES": "a", "RETRY_ATTEMPTS": 7}
    with override_settings(DJANGO_MSM=msm):
        inside = get_config()
        assert [(node.id, node.failover) for node in inside.nodes] == [
            ("b", False), ("c", False), ("a", True)
        ]
        assert inside.retry_attempts == 7
        with override_settings(SECRET_KEY="another"):
            assert get_config().signing_keys != inside.signing_keys
    assert get_config() == before


def test_get_config_after_a_bad_override_recovers() -> None:
    with override_settings(DJANGO_MSM={"RETRY_ATTEMPTS": 0}), pytest.raises(ConfigurationError):
        get_config()
    assert get_config().retry_attempts == 2


# -- W028: a single node --------------------------------------------------------------------------
@pytest.mark.parametrize("nodes", [
    "127.0.0.1:11211", "n1:127.0.0.1:11211", ["n1:127.0.0.1:11211"], "r1:redis://127.0.0.1:6379/0",
])
def test_w028_a_single_node_has_no_backup_copy(nodes: Any) -> None:
    """The single id-less 'host:port' form warns too: it has no backup copy either."""
    assert reports({"MEMCACHED_NODES": nodes}) == [w028()]


def test_w028_comes_after_the_errors() -> None:
    found = reports({"MEMCACHED_NODES": "n1:127.0.0.1:11211", "RETRY_ATTEMPTS": 0})
    assert found == [e011("RETRY_ATTEMPTS", 0), w028()]


def test_no_w028_when_msm_is_disabled() -> None:
    """ENABLED = False keeps sessions in the process: no node, no backup to warn about."""
    assert reports({"MEMCACHED_NODES": "127.0.0.1:11211", "ENABLED": False}) == []
    assert reports({"ENABLED": False}, two_nodes=False) == []


def test_no_w028_with_a_failover_node() -> None:
    """A failover node holds the backup copies of the regular node (the backup walk wraps
    through failover nodes), so one regular node plus one failover node has a backup."""
    assert reports({"MEMCACHED_NODES": NODES, "FAILOVER_NODES": "n2"}) == []


def test_no_w028_on_top_of_a_node_error() -> None:
    """A single node with FAILOVER_NODES is E007 already; the warning would say it twice."""
    found = reports({"MEMCACHED_NODES": "n1:127.0.0.1:11211", "FAILOVER_NODES": "n1"})
    assert [message.id for message in found] == ["django_msm.E007"]


def test_the_warnings_never_stop_the_engine() -> None:
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": "127.0.0.1:11211",
                                       "LOCK_WAIT_TIMEOUT": 0.5}):
        assert [message.id for message in checks.validate()] == [
            "django_msm.W027", "django_msm.W028"
        ]
        assert get_config().lock_wait == 0.5


# -- E030 - E034: node changes; AUTO_REPAIR and REPAIR_RATE --------------------------------------
THREE = "n1:127.0.0.1:11211,n2:127.0.0.1:11212,n3:127.0.0.1:11213"


def test_node_changes_reach_the_config() -> None:
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": THREE, "DRAINING_NODES": "n3",
                                       "RETIRED_NODES": ["n4", "n5"], "REPAIR_RATE": 200,
                                       "AUTO_REPAIR": False}):
        config = get_config()
    assert config.draining == frozenset({"n3"}) and config.retired == ("n4", "n5")
    assert (config.repair_rate, config.auto_repair) == (200, False)
    with override_settings(DJANGO_MSM={"MEMCACHED_NODES": THREE}):
        config = get_config()
    assert (config.auto_repair, config.repair_rate, config.draining, config.retired) == (
        True, 10_000, frozenset(), ())


@pytest.mark.parametrize("key", ["DRAINING_NODES", "RETIRED_NODES"])
def test_e030_node_change_lists_of_wrong_type(key: str) -> None:
    assert reports({"MEMCACHED_NODES": THREE, key: 3}) == [
        Error(
            f"DJANGO_MSM[{key!r}] = 3 is invalid: expected a string or a list of strings, got int.",
            hint="Use node ids separated by commas, such as 'n3', or a list of ids.",
            id="django_msm.E030",
        )
    ]


def test_e031_draining_node_must_be_configured() -> None:
    assert reports({"MEMCACHED_NODES": THREE, "DRAINING_NODES": "n2,n9"}) == [
        Error(
            "DJANGO_MSM['DRAINING_NODES'] names unknown node 'n9'.",
            hint="Use ids from MEMCACHED_NODES: 'n1', 'n2', 'n3'; a node "
            "already removed from it belongs in RETIRED_NODES.",
            id="django_msm.E031",
        )
    ]


def test_e032_some_regular_node_must_stay_undrained() -> None:
    msm = {"MEMCACHED_NODES": THREE, "FAILOVER_NODES": "n3", "DRAINING_NODES": "n1 n2"}
    assert reports(msm) == [
        Error(
            "DJANGO_MSM['DRAINING_NODES'] = 'n1 n2' lists every regular node.",
            hint="Leave at least one regular node to take new sessions and backups.",
            id="django_msm.E032",
        )
    ]


def test_e033_e034_retired_nodes_are_well_formed_and_no_longer_configured() -> None:
    assert reports({"MEMCACHED_NODES": THREE, "RETIRED_NODES": "n2,bad-id"}) == [
        Error(
            "DJANGO_MSM['RETIRED_NODES'] has an invalid node id 'bad-id'.",
            hint="Use the id the node had in MEMCACHED_NODES (letters, digits and '_', max 32).",
            id="django_msm.E034",
        ),
        Error(
            "DJANGO_MSM['RETIRED_NODES'] names node 'n2', which is still in MEMCACHED_NODES.",
            hint="Drain it first (DRAINING_NODES, then manage.py msm_drain), then move it from "
            "MEMCACHED_NODES to RETIRED_NODES.",
            id="django_msm.E033",
        ),
    ]


def test_auto_repair_is_a_bool_and_repair_rate_a_positive_int() -> None:
    assert reports({"MEMCACHED_NODES": THREE, "AUTO_REPAIR": "yes", "REPAIR_RATE": 0}) == [
        e011("REPAIR_RATE", 0),
        Error("DJANGO_MSM['AUTO_REPAIR'] must be True or False, not 'yes'.", hint="Use a bool.",
              id="django_msm.E022"),
    ]
