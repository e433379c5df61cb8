"""The demo cluster's app instances (gunicorn) and load balancer (nginx), on loopback ports.

Each process gets its own log file in the cluster's work folder and is started in a session of
its own, so that killing it (``kill()``: SIGKILL to the whole process group, as a crash) takes
its workers along and nothing outlives the cluster. Every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR = ROOT / "testproject"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> str | None:
    """Return the body of ``url``, or None if nothing answers (no proxy, loopback only)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return response.read().decode()
    except OSError:
        return None


class Process:
    """A child process with a log file, started in its own session, stopped by process group."""

    name = "process"

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(self, args: list[str], env: Mapping[str, str] | None = None) -> None:
        self._log = open(self.log_path, "ab")  # closed in _reap()
        self.popen = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until(
        self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT
    ) -> None:
        """Poll ``ready()`` until it holds; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not self.alive:
                raise RuntimeError(f"{self.name} exited while starting; see {self.log_path}")
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name}: {what} not ready after {timeout:.0f}s; see {self.log_path}"
        )

    def _signal_group(self, signum: int) -> None:
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process and its children at once: a crash, nothing is flushed."""
        if self.popen is not None:
            self._signal_group(signal.SIGKILL)
            self._reap(STOP_TIMEOUT)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask politely, then kill whatever is left of the process group."""
        if self.popen is None:
            return
        if self.alive:
            self._signal_group(signum)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored signal %d; killing it", self.name, signum)
        self._signal_group(signal.SIGKILL)  # workers left behind by a dead master, if any
        self._reap(STOP_TIMEOUT)

    def _reap(self, timeout: float) -> None:
        assert self.popen is not None
        self.popen.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None


class AppInstance(Process):
    """One gunicorn instance of testproject, named like an msm ``jvmRoute`` (app1, app2)."""

    def __init__(self, name: str, port: int, env: Mapping[str, str], workdir: Path):
        super().__init__(workdir / f"{name}.log")
        self.name = name
        self.port = port
        self.env = dict(env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn_server(self) -> None:
        args = [
            sys.executable, "-m", "gunicorn", "--chdir", str(PROJECT_DIR),
            "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4",
            "--timeout", "30", "--graceful-timeout", "3",
            "--access-logfile", "-", "--access-logformat", f'[{self.name}] "%(r)s" %(s)s',
            "testproject.wsgi",
        ]
        self.spawn(args, self.env)

    def wait_ready(self) -> None:
        expected = f"ok {self.name}"
        self.wait_until(
            lambda: (http_get(f"{self.url}/healthz") or "").strip() == expected, "gunicorn"
        )

    def start(self) -> AppInstance:
        self.spawn_server()
        self.wait_ready()
        return self


def nginx_binary() -> str:
    """nginx lives in /usr/sbin on Debian, which a non-root PATH often lacks."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed: run `make demo`, which installs it")
    return found
