"""Real app processes for the HTTP tests: gunicorn instances of ``tests/http_app`` on loopback.

Each ``AppServer`` runs ``gunicorn tests.http_app.wsgi:application --workers 1`` (optionally
with ``--threads N``) on a free port, in a process group of its own, so ``kill()`` (SIGKILL to
the group, a crash) takes the worker along and nothing outlives a test. Every wait is bounded.
``Browser`` is a tiny HTTP client that keeps one session cookie by hand (``http.client``), so
tests see every ``Set-Cookie``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.keyleaks import detector
from tests.servers import MemcachedProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
COOKIE_NAME = "sessionid"


class AppServer:
    """One app instance (gunicorn master + one worker, sync or gthread) with its own environment."""

    def __init__(self, name: str, env: Mapping[str, str], threads: int = 1):
        if not GUNICORN.exists():
            raise RuntimeError(f"gunicorn is not installed in the venv ({GUNICORN})")
        self.name = name
        self.env = dict(env)
        self.threads = threads  # > 1: one gthread worker serving that many requests at once
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"msm-{name}-", suffix=".log", delete=False)
        self._log.close()

    @property
    def log_path(self) -> str:
        return self._log.name

    def start(self) -> AppServer:
        """Start on a fresh free port and wait (bounded) until /health/ answers."""
        self.port = free_port()
        env = {
            **os.environ,
            **self.env,
            "MSM_INSTANCE": self.name,
            "DJANGO_SETTINGS_MODULE": "tests.http_app.settings",
            "PYTHONPATH": str(ROOT),
        }
        args = [str(GUNICORN), "tests.http_app.wsgi:application",
                "-b", f"127.0.0.1:{self.port}", "--workers", "1", "--log-level", "warning"]
        if self.threads > 1:
            args += ["--worker-class", "gthread", "--threads", str(self.threads)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"app {self.name} exited at start:\n{self.log_tail()}")
            try:
                status, _, _ = request("GET", self.port, "/health/", timeout=0.5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"app {self.name} not ready after {START_TIMEOUT}s:\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole instance at once (``kill -9``): a crashed app server."""
        self._signal_group(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """Terminate politely, then kill whatever is left; safe to call twice."""
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                assert self.process is not None
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # a worker left behind by its master, if any
        self._reap()

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self, lines: int = 30) -> str:
        with open(self.log_path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def counters(self) -> dict[str, Any]:
        """The worker's django_msm statistics counters (``/stats/``)."""
        status, _, body = request("GET", self.port, "/stats/")
        assert status == 200, body
        return json.loads(body)


def request(
    method: str,
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request to 127.0.0.1:port; return status, headers and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@dataclass
class Reply:
    status: int
    set_cookie: str | None  # the raw value of the session cookie sent back, if any
    body: dict[str, Any]


@dataclass
class Browser:
    """A user agent with one session cookie, handled by hand so every Set-Cookie is seen."""

    cookie: str | None = None
    replies: list[Reply] = field(default_factory=list)

    def get(self, server: AppServer, path: str) -> Reply:
        return self._send("GET", server, path, None)

    def post(self, server: AppServer, path: str, form: Mapping[str, str]) -> Reply:
        return self._send("POST", server, path, urllib.parse.urlencode(form).encode())

    def _send(self, method: str, server: AppServer, path: str, body: bytes | None) -> Reply:
        headers = {"Cookie": f"{COOKIE_NAME}={self.cookie}"} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, response_headers, raw = request(method, server.port, path, headers, body)
        set_cookie = session_cookie(response_headers)
        if set_cookie is not None:
            self.cookie = set_cookie or None  # an empty value deletes the cookie
        content = json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode(errors="replace")}
        reply = Reply(status, set_cookie, content)
        self.replies.append(reply)
        return reply


def session_cookie(headers: http.client.HTTPMessage) -> str | None:
    """The session cookie's value in the response's Set-Cookie headers ("" for a deletion)."""
    for header in headers.get_all("Set-Cookie") or []:
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if COOKIE_NAME in cookie:
            return cookie[COOKIE_NAME].value
    return None


class AppFleet:
    """The app servers one test started; ``close()`` stops every one, also after a failure."""

    def __init__(self) -> None:
        self.servers: list[AppServer] = []

    def start(
        self, name: str, nodes: Sequence[MemcachedProcess], threads: int = 1, **env: str
    ) -> AppServer:
        """Start instance ``name`` on ``nodes``; ``env`` adds MSM_* variables (see settings.py).

        ``threads`` > 1 lets the instance's one worker serve that many requests concurrently.
        """
        environment = {"MSM_NODES": ",".join(node.spec for node in nodes), **env}
        server = AppServer(name, environment, threads)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
            # Shown by pytest only when the test failed: the instance's own account of it.
            print(f"--- log of app {server.name} ---\n{server.log_tail()}")
            detector.scan_file(server.log_path, f"app {server.name} (gunicorn log)")
            os.unlink(server.log_path)


@contextmanager
def app_fleet() -> Iterator[AppFleet]:
    """An AppFleet for the duration of a ``with`` block (the test files' fixtures use it)."""
    fleet = AppFleet()
    try:
        yield fleet
    finally:
        fleet.close()
