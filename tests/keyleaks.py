"""A session key in any log record of the suite fails the run (issue 16: keys are credentials).

``KeyLeakDetector`` is a logging handler that tests/conftest.py puts on the root logger, at
DEBUG, for the whole run. It checks every record's formatted message and exception text:

* the exact key shape of ``core.keys`` (32 chars ``[a-z0-9]``, optionally ``-node`` and
  ``.route``), not inside a longer run of letters and digits, and not pure hex: a random key is
  pure hex with odds of (16/36)**32 ~ 1e-11, while md5 digests, uuids and ``token_hex`` tokens
  always are, so hex digests are never taken for keys;
* the last ``MAX_ISSUED`` keys the engine issued (``issued``, fed by the hook on the engine's
  key factory), found anywhere in the text, even glued to other characters. Bounded: some tests
  create hundreds of thousands of sessions and measure the process's memory.

Offenders are kept (at most ``MAX_KEPT``) with the key masked to its first 4 characters, and the
run fails at its end listing them. App processes' logs (gunicorn) are files: ``scan_file`` checks
them the same way before the tests delete them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import pytest

from django_msm.core.keys import BASE_LENGTH, SESSION_KEY_PATTERN

KEY_RE = re.compile(rf"(?<![A-Za-z0-9])({SESSION_KEY_PATTERN})(?![A-Za-z0-9_])")
_BASE_RUN = re.compile(rf"[a-z0-9]{{{BASE_LENGTH},}}")
_HEX = frozenset("0123456789abcdef")
MAX_KEPT = 50
MAX_ISSUED = 5000
# Test tooling that logs raw HTTP payloads by design (chromedriver's replies carry page text);
# its records say nothing about django_msm and are not checked.
IGNORED_LOGGERS = ("selenium", "urllib3")


def mask(key: str) -> str:
    """A found key as a report may show it: the first 4 characters and its length."""
    return f"{key[:4]}…({len(key)} chars)"


class KeyLeakDetector(logging.Handler):
    """Collects the log records that carry a session key; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.issued: OrderedDict[str, None] = OrderedDict()
        self._issued_lock = threading.Lock()  # request threads issue keys concurrently
        self.offenders: list[str] = []
        self.total = 0

    def remember(self, key: str) -> None:
        """Note a key the engine issued (by its 32-char base: node and route vary)."""
        with self._issued_lock:
            self.issued[key[:BASE_LENGTH]] = None
            if len(self.issued) > MAX_ISSUED:
                self.issued.popitem(last=False)

    def keys_in(self, text: str) -> list[str]:
        """Every session key in ``text``: by shape (not pure hex), or issued during the run."""
        found = [m.group(1) for m in KEY_RE.finditer(text) if not _HEX.issuperset(m.group(1)[:32])]
        for run in _BASE_RUN.findall(text):
            for start in range(len(run) - BASE_LENGTH + 1):
                if run[start:start + BASE_LENGTH] in self.issued:
                    found.append(run[start:start + BASE_LENGTH])
        return list(dict.fromkeys(found))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(IGNORED_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken record is the logging module's business, not ours
            return
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        self.check(text, f"{record.name}:{record.levelname} ({record.pathname}:{record.lineno})")

    def check(self, text: str, where: str) -> None:
        keys = self.keys_in(text)
        if not keys:
            return
        self.total += 1
        if len(self.offenders) < MAX_KEPT:
            shown = text.splitlines()[0] if text else ""
            for key in keys:
                shown = shown.replace(key, mask(key))
            self.offenders.append(f"{where}: {shown[:200]}")

    def scan_lines(self, lines: Iterable[str], source: str) -> None:
        for number, line in enumerate(lines, 1):
            self.check(line.rstrip("\n"), f"{source} line {number}")

    def scan_file(self, path: str | Path, source: str) -> None:
        """Check an app process's log file (gunicorn's stderr), line by line."""
        with open(path, errors="replace") as log:
            self.scan_lines(log, source)

    def report(self) -> str:
        lines = [f"{self.total} log record(s) carried a session key (keys shown masked):"]
        lines += [f"  {offender}" for offender in self.offenders]
        if self.total > len(self.offenders):
            lines.append(f"  ... and {self.total - len(self.offenders)} more")
        return "\n".join(lines)


detector = KeyLeakDetector()


# -- the pytest hooks (tests/conftest.py imports them; `-p tests.keyleaks` loads them elsewhere) --
def pytest_configure(config: pytest.Config) -> None:
    """Watch every record of the run, and learn every key the engine issues."""
    from django_msm.core import copies
    from django_msm.core.keys import SessionId

    root = logging.getLogger()
    root.addHandler(detector)
    root.setLevel(logging.DEBUG)
    for name in IGNORED_LOGGERS:  # their DEBUG lines would flood every failure report
        logging.getLogger(name).setLevel(logging.INFO)
    issue = copies.new_id

    def issue_and_remember(node_id: str | None, route: str | None = None) -> SessionId:
        sid = issue(node_id, route)
        detector.remember(sid.base)
        return sid

    copies.new_id = issue_and_remember


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if detector.total and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if detector.total:
        terminalreporter.write_sep("=", "FAILED: session keys in log records", red=True)
        terminalreporter.write_line(detector.report())
