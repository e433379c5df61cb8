"""``python -m demo restart n1``: ask the running demo to start one of its processes again.

The demo owns every process it started (it stops them all on Ctrl-C), so a restart is done by
the demo itself: it listens on a Unix socket in its work folder (``control.sock``, readable by
this user only) for one line, ``restart <name>``, and answers one line. The command finds the
running demo by that socket; with several demos running, ``--run`` names the work folder.
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .cluster import WORK_ROOT

SOCKET_NAME = "control.sock"
TIMEOUT = 90.0  # an app instance may take a while to boot on a busy machine


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        words = self.rfile.readline(200).decode(errors="replace").split()
        if not words:  # a client looking for live demos (``_live_sockets``) says nothing
            return
        server: ControlServer = self.server  # type: ignore[assignment]
        if len(words) == 2 and words[0] == "restart":
            reply = server.restart(words[1])
        else:
            reply = "error: the only command is: restart <name>"
        try:
            self.wfile.write(reply.encode() + b"\n")
        except OSError:  # the asker gave up waiting; the restart happened all the same
            pass


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves ``restart <name>`` on ``<workdir>/control.sock`` in a daemon thread."""

    daemon_threads = True

    def __init__(self, workdir: Path, restart: Callable[[str], str]):
        self.path = workdir / SOCKET_NAME
        self.restart = restart
        old_umask = os.umask(0o077)  # the socket: this user only
        try:
            super().__init__(str(self.path), _Handler)
        finally:
            os.umask(old_umask)
        self.thread = threading.Thread(target=self.serve_forever, name="demo-control",
                                       daemon=True)

    def __enter__(self) -> ControlServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


def _live_sockets() -> list[Path]:
    """Control sockets of the demos running now (a socket nobody listens on is left over)."""
    found = []
    for path in sorted(WORK_ROOT.glob(f"run-*/{SOCKET_NAME}")):
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(path))
            except OSError:
                continue
        found.append(path)
    return found


def _ask(path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        return sock.makefile().readline().strip()


def main(argv: list[str]) -> int:
    """``python -m demo restart NAME [--run DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m demo restart",
                                     description="start a process of the running demo again")
    parser.add_argument("name", help="a memcached node (n1, n2) or an app instance (app1, app2)")
    parser.add_argument("--run", type=Path, help="the demo's work folder, if several run")
    args = parser.parse_args(argv)
    sockets = [args.run / SOCKET_NAME] if args.run else _live_sockets()
    if len(sockets) != 1:
        found = ", ".join(str(path.parent) for path in sockets) or "none"
        print(f"need exactly one running demo, found: {found}; name one with --run",
              file=sys.stderr)
        return 2
    try:
        reply = _ask(sockets[0], f"restart {args.name}")
    except OSError as exc:
        print(f"the demo did not answer: {exc}", file=sys.stderr)
        return 1
    print(reply)
    return 0 if reply.startswith("ok") else 1
