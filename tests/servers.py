"""Real server processes for the integration tests: free loopback ports, kill, pause, restart.

``ServerProcess`` is the lifecycle every kind shares (memcached here, redis-server and Sentinel
in ``tests/redis_servers.py``): each process belongs to the test that started it, and a kind
only says how it is started (``command``) and how it shows it is ready (``answers``). The
memcached helpers below read a node behind the engine's back, so tests can check what the
engine really sent and stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Self

from pymemcache.client.base import Client as RawClient

START_TIMEOUT = 10.0


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is in the stopped state (Linux ``/proc``)."""
    states = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/stat") as f:
            states.append(f.read().rpartition(")")[2].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


class ServerProcess:
    """One server on 127.0.0.1 that a test can crash, hang, wake and reboot empty."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that runs this server in the foreground."""
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server answers a request right now (the readiness probe)."""
        raise NotImplementedError

    def launch(self) -> subprocess.Popen[bytes]:
        """Spawn ``command()``; a kind that keeps the server's output overrides this."""
        return subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def log_tail(self) -> str:
        """The end of the server's own output, for a start failure ("" if it is not kept)."""
        return ""

    def start(self) -> Self:
        """Spawn the server and wait (bounded) until it answers; fail loudly if it does not."""
        self.process = self.launch()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.answers():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        tail = self.log_tail()
        msg = f"{self.command()[0]} on port {self.port} did not start"
        raise RuntimeError(f"{msg}: {tail}" if tail else msg)

    def kill(self) -> None:
        """SIGKILL, as a crashed node (a stopped process is woken first so it can die)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the node accepts connections but never answers (a hung node or a split).

        Returns once every thread of the server is stopped: the signal is delivered
        asynchronously, and a thread still running on the other core would answer one more
        request (seen as a rare failure of the paused-node timeout test on a busy machine).
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + START_TIMEOUT
        while not _all_threads_stopped(self.process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.command()[0]} on port {self.port} did not stop")
            time.sleep(0.005)

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


class MemcachedProcess(ServerProcess):
    """One memcached server on 127.0.0.1, owned by the test that started it."""

    def __init__(self, node_id: str, port: int | None = None, memory_mb: int = 64):
        binary = shutil.which("memcached")
        if binary is None:
            raise RuntimeError("memcached is not installed: run `make test`, which installs it")
        super().__init__(port)
        self.binary = binary
        self.node_id = node_id
        self.memory_mb = memory_mb

    @property
    def spec(self) -> str:
        return f"{self.node_id}:127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
                "-m", str(self.memory_mb), "-t", "1"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        return args

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"version\r\n")
                return sock.recv(64).startswith(b"VERSION")
        except OSError:
            return False

    def item_count(self) -> int:
        """How many items the node holds (``curr_items``)."""
        return node_stats(self.port)["curr_items"]


class NodeStats:
    """memcached's ``stats`` over one persistent connection (which itself adds no connection)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def read(self) -> dict[str, int]:
        self.sock.sendall(b"stats\r\n")
        reply = b""
        deadline = time.monotonic() + 5
        while not reply.endswith(b"END\r\n") and time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        stats = {}
        for line in reply.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
                stats[parts[1]] = int(parts[2])
        return stats

    def close(self) -> None:
        self.sock.close()


def node_stats(port: int) -> dict[str, int]:
    """memcached's own ``stats`` counters over a fresh socket (independent of the engine)."""
    stats = NodeStats(port)
    try:
        return stats.read()
    finally:
        stats.close()


@contextlib.contextmanager
def raw_client(node: MemcachedProcess) -> Iterator[RawClient]:
    """A plain pymemcache client on one node, to look at stored keys behind the engine's back."""
    client = RawClient(("127.0.0.1", node.port), connect_timeout=2, timeout=2)
    try:
        yield client
    finally:
        client.close()


def raw_get(node: MemcachedProcess, key: str) -> bytes | None:
    with raw_client(node) as client:
        return client.get(key)
