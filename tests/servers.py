"""Real memcached processes for the integration tests: free loopback ports, kill, pause, restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION")
    except OSError:
        return False


class MemcachedProcess:
    """One memcached server on 127.0.0.1, owned by the test that started it."""

    def __init__(self, node_id: str, port: int | None = None, memory_mb: int = 64):
        binary = shutil.which("memcached")
        if binary is None:
            raise RuntimeError("memcached is not installed: run `make test`, which installs it")
        self.binary = binary
        self.node_id = node_id
        self.port = port or free_port()
        self.memory_mb = memory_mb
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def spec(self) -> str:
        return f"{self.node_id}:127.0.0.1:{self.port}"

    def start(self) -> MemcachedProcess:
        args = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
                "-m", str(self.memory_mb), "-t", "1"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _answers(self.port, 0.2):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"memcached on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL, as a crashed node."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the node accepts connections but never answers (a hung node or a split)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart_empty(self) -> None:
        """Kill and start again on the same port with no data, as a rebooted node."""
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        self.process = None
