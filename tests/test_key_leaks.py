"""Issue 16: no session key in logs or error messages; tags instead, repeated warnings throttled.

The run-wide check itself (tests/keyleaks.py) is shown to fail: a pytest run whose one test logs
a key exits with a failure and lists the record with the key masked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import override_settings

from django_msm.clock import FakeClock
from django_msm.core.keys import KeyTag, key_tag, new_id, parse
from django_msm.core.throttle import LogThrottle
from django_msm.exceptions import LockTimeout
from tests.keyleaks import KeyLeakDetector, mask
from tests.test_backup_memory import make_cluster

TWO = "n1:10.0.0.1:11211,n2:10.0.0.2:11211"

ROOT = Path(__file__).resolve().parent.parent


# -- tags ----------------------------------------------------------------------------------------
def test_a_tag_is_six_hex_digits_stable_per_secret_and_keyed():
    key = "k3j9qz0abcdefghijklmnopqrstuvw12-n1"  # fixed: the assertions below are exact
    tag = key_tag(key, b"deployment-a")
    assert len(tag) == 6 and set(tag) <= set("0123456789abcdef")
    assert key_tag(key, b"deployment-a") == tag
    assert key_tag(key, b"deployment-b") != tag
    assert key_tag(key.replace("-n1", "-n2"), b"deployment-a") != tag
    tags = {key_tag(str(new_id("n1")), b"deployment-a") for _ in range(200)}
    assert len(tags) >= 195  # 24 bits: distinct sessions get distinct tags
    assert str(KeyTag(key, b"deployment-a")) == f"#{tag}"


def test_processes_of_one_deployment_tag_alike_and_other_secrets_differently():
    """Two configs built from the same SECRET_KEY (two app processes) give the same tag."""
    key = new_id("n2")
    one, two = make_cluster(TWO).parts.config, make_cluster(TWO).parts.config
    assert one is not two and str(one.tag(key)) == str(two.tag(key))
    with override_settings(SECRET_KEY="another deployment"):
        other = make_cluster(TWO).parts.config
    assert str(other.tag(key)) != str(one.tag(key))
    assert str(key) not in str(one.tag(key)) and key.base[:6] not in str(one.tag(key))


def test_lock_timeout_names_the_tag_and_node_never_the_key():
    key = new_id("n1")
    test = make_cluster(TWO, LOCK_WAIT_TIMEOUT=0.01, LOCK_TIMEOUT_POLICY="fail")
    cluster = test.parts
    cluster.locker.sleep = test.clock.advance  # wait out the budget on the fake clock
    primary = cluster.registry.node_for(key)
    holder = cluster.locker.acquire(key, primary)
    assert holder is not None
    with pytest.raises(LockTimeout) as raised:
        cluster.locker.acquire_or_raise(key, primary)
    tag = str(cluster.config.tag(key))
    assert str(raised.value).startswith(f"session {tag} (node n1) is locked by another request (")
    assert key.base not in str(raised.value) and key.base not in repr(raised.value.args)


# -- throttling ----------------------------------------------------------------------------------
class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def records():
    logger = logging.getLogger("tests.throttle")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, handler.lines
    logger.removeHandler(handler)


def test_the_first_warning_is_logged_then_one_per_interval_with_the_suppressed_count(records):
    logger, lines = records
    clock = FakeClock()
    throttle = LogThrottle(clock, interval=60)
    message = "session %s (node %s) has no backup copy"
    logged = [throttle.log(logger, logging.WARNING, "n1", message, f"#{i}", "n1") for i in range(4)]
    clock.advance(59.9)
    logged.append(throttle.log(logger, logging.WARNING, "n1", message, "#4", "n1"))
    clock.advance(0.1)
    logged.append(throttle.log(logger, logging.WARNING, "n1", message, "#5", "n1"))
    logged.append(throttle.log(logger, logging.WARNING, "n1", message, "#6", "n1"))
    assert logged == [True, False, False, False, False, True, False]
    assert lines == [
        "session #0 (node n1) has no backup copy",
        "session #5 (node n1) has no backup copy (4 similar suppressed)",
    ]


def test_throttling_is_per_node_and_per_message(records):
    logger, lines = records
    throttle = LogThrottle(FakeClock(), interval=60)
    for node in ("n1", "n2", "n1", "n2"):
        throttle.log(logger, logging.WARNING, node, "node %s down", node)
    throttle.log(logger, logging.WARNING, "n1", "node %s slow", "n1")
    assert lines == ["node n1 down", "node n2 down", "node n1 slow"]


def test_a_disabled_level_is_not_counted(records):
    logger, lines = records
    throttle = LogThrottle(FakeClock(), interval=60)
    assert not throttle.log(logger, logging.DEBUG, "n1", "noise")
    assert throttle.log(logger, logging.WARNING, "n1", "noise")
    assert lines == ["noise"]


def test_saves_while_the_backup_node_is_down_warn_once_by_tag(records, caplog):
    """The issue's case: every saving request warned "has no backup copy" with the whole key."""
    test = make_cluster(TWO)
    test.store("n2").down = True
    cluster = test.parts
    sids = []
    with caplog.at_level(logging.WARNING, logger="django_msm"):
        for _ in range(5):
            copy = cluster.copies.new_copy(b"payload", 60, revision=1)
            sid, _ = cluster.copies.create(copy, 60, None)
            sids.append(sid)
    warnings = [r.getMessage() for r in caplog.records if "backup" in r.getMessage()]
    first = sids[0]
    assert warnings == [
        f"session {cluster.config.tag(first)} (node {first.node_id}) has no backup copy: "
        "no backup node available"
    ], caplog.text
    assert not any(sid.base in caplog.text for sid in sids)


# -- the run-wide detector -----------------------------------------------------------------------
def test_the_detector_flags_a_logged_key_and_masks_it():
    detector = KeyLeakDetector()
    logger = logging.getLogger("tests.leaky")
    logger.propagate = False  # this test's own leak must not fail the real run
    logger.addHandler(detector)
    key = str(new_id("n1", "web1"))
    try:
        logger.warning("session %s has no backup copy", key)
        logger.info("a session (node %s) has no backup copy", "n1")
        try:
            raise ValueError(f"bad key lock:x_{key}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(detector)
        logger.propagate = True
    assert detector.total == 2
    assert all(key not in line and key[:20] not in line for line in detector.offenders)
    assert mask(key) in detector.offenders[0] and "has no backup copy" in detector.offenders[0]
    assert detector.report().startswith("2 log record(s) carried a session key")


@pytest.mark.parametrize(
    "text",
    [
        hashlib.md5(b"x").hexdigest(),  # noqa: S324  (a 32-hex digest is not a key)
        uuid.uuid4().hex,
        hashlib.sha256(b"x").hexdigest(),
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        "abcdefghijklmnopqrstuvwxyz0123456",  # 33 chars: no key is that long without a suffix
        "session #3fa9c1 (node n1)",
    ],
)
def test_the_detector_leaves_digests_tokens_and_tags_alone(text):
    detector = KeyLeakDetector()
    detector.check(text, "here")
    assert detector.total == 0


def test_the_detector_finds_issued_keys_even_glued_to_other_text():
    detector = KeyLeakDetector()
    sid = new_id("n1")
    hexlike = parse("0123456789abcdef0123456789abcdef-n1")
    assert hexlike is not None
    detector.remember(sid.base)
    detector.remember(hexlike.base)
    detector.check(f"prefix{sid.base}suffix", "glued")
    detector.check(f"lock:{hexlike}", "a pure-hex key the engine did issue")
    assert detector.total == 2


def test_a_run_that_logs_a_key_fails_and_lists_the_record_masked(tmp_path):
    key = "k3j9qz0abcdefghijklmnopqrstuvw12-n1"
    (tmp_path / "test_leak.py").write_text(
        "import logging\n"
        "def test_logs_a_key():\n"
        f"    logging.getLogger('django_msm.demo').warning('session %s lost', {key!r})\n"
        "def test_logs_no_key():\n"
        "    logging.getLogger('django_msm.demo').warning('session #3fa9c1 lost')\n"
    )
    result = _inner_pytest(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "2 passed" in result.stdout
    assert "FAILED: session keys in log records" in result.stdout
    assert "1 log record(s) carried a session key" in result.stdout
    assert f"session {mask(key)} lost" in result.stdout
    assert key not in result.stdout + result.stderr


def test_a_run_without_keys_passes(tmp_path):
    (tmp_path / "test_clean.py").write_text(
        "import logging, uuid\n"
        "def test_clean():\n"
        "    logging.getLogger('x').warning('token %s', uuid.uuid4().hex)\n"
    )
    result = _inner_pytest(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "session keys" not in result.stdout


def _inner_pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.keyleaks", "-p", "no:django",
         "-p", "no:cacheprovider", str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )
