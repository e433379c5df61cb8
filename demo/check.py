"""``python -m demo.check``: the serving phase of ``make demo``, exercised as a visitor would.

Starts ``python -m demo --skip-tour``, reads the banner, opens a session through nginx, kills the
memcached node holding it with the command the banner printed, reloads, and waits for the
narration to tell the crash, the quarantine and the move; then restarts the node with the
printed restart command, stops the demo with Ctrl-C (SIGINT) and checks that every process it
listed is gone and that no session key was printed. Exit status 0 if all of that held; the
demo's whole output is printed either way.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

from django_msm.core.keys import BASE_LENGTH

from .client import ShopClient
from .processes import ROOT

TIMEOUT = 90.0
KEY = re.compile(rf"[a-z0-9]{{{BASE_LENGTH}}}")


class Demo:
    """The demo as a child process whose output lines are collected by a thread."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "demo", "--skip-tour"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The first line (old or new) matching ``pattern``; fails after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if match := regex.search(line):
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f} s")
            try:
                self.lines.append(self._queue.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                pass


def _run(command: str) -> None:
    print(f"$ {command}")
    subprocess.run(shlex.split(command), cwd=ROOT, check=True, timeout=TIMEOUT)


def exercise(demo: Demo) -> None:
    """The visitor's session, and what the demo must have told about it."""
    url = demo.wait_for(r"^Serving (http://\S+)/").group(1)
    demo.wait_for("Ctrl-C stops everything")
    client = ShopClient(url)
    before = client.status()
    node = before["primary"]
    _run(_command(demo, node, "kill -9"))
    after = client.status()
    assert after["visits"] == before["visits"] + 1, "the session was lost"
    demo.wait_for(rf"demo\s+memcached {node} \(pid \d+\) gone: killed by SIGKILL")
    demo.wait_for(rf"node {node} quarantined")
    demo.wait_for(rf"a session moved: key …-{node} → …-{after['primary']}")
    _run(_command(demo, node, "-m demo restart"))
    demo.wait_for(rf"memcached {node} runs again: pid \d+")


def _command(demo: Demo, title: str, start: str) -> str:
    """The command the banner printed under ``title`` that contains ``start``."""
    block = False
    for line in demo.lines:
        if line.startswith("  ") and not line.startswith("    "):
            block = line.split()[1:2] == [title]
        elif block and start in line:
            return line.strip()
    raise AssertionError(f"no {start!r} command printed for {title}")


def main() -> int:
    demo = Demo()
    ok = False
    try:
        exercise(demo)
        pids = [int(m) for line in demo.lines for m in re.findall(r"\bpid (\d+)\b", line)]
        demo.popen.send_signal(signal.SIGINT)
        assert demo.popen.wait(timeout=TIMEOUT) == 0, "the demo did not exit cleanly"
        demo.wait_for("Stopped everything the demo started", timeout=5)
        alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
        assert not alive, f"still running after Ctrl-C: {alive}"
        keys = [line for line in demo.lines if KEY.search(line)]
        assert not keys, f"a session key was printed: {keys[0]}"
        ok = True
    finally:
        if demo.popen.poll() is None:
            demo.popen.send_signal(signal.SIGINT)
            demo.popen.wait(timeout=TIMEOUT)
        print("\n".join(["--- the demo's output ---", *demo.lines]))
    print("serving phase: ok" if ok else "serving phase: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
