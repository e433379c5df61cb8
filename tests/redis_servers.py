"""Real redis-server and Sentinel processes for the integration tests, on free loopback ports.

The lifecycle (start and wait until ready, kill, pause, resume, restart empty) is
``tests/servers.py``'s ServerProcess; here each process also lives in its own temporary directory
(no dump files, no config left behind) that keeps its output for a failed start. Every wait is
bounded.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from tests.servers import ServerProcess


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed: run `make test`, which installs it"
        raise RuntimeError(msg)
    return path


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    msg = f"timed out after {timeout:.0f}s waiting for {what}"
    raise AssertionError(msg)


def pings(client: redis.Redis) -> bool:
    """Whether ``client``'s server answers PING right now; the client is closed either way."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class _RedisServerProcess(ServerProcess):
    """A redis-server binary (plain or Sentinel mode) in a temporary directory of its own."""

    def __init__(self, port: int | None):
        super().__init__(port)
        self.workdir = Path(tempfile.mkdtemp(prefix="msm-redis-"))

    def client(self, timeout: float = 5.0) -> redis.Redis:
        """A plain client of this server, independent of the engine (close it after use)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )

    def answers(self) -> bool:
        return pings(self.client(timeout=0.5))

    def launch(self) -> subprocess.Popen[bytes]:
        """Spawn with the output kept in ``server.log``, shown when the start fails."""
        with (self.workdir / "server.log").open("ab") as log:
            return subprocess.Popen(
                self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def log_tail(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisProcess(_RedisServerProcess):
    """One redis-server on 127.0.0.1 without persistence; ``replica_of`` makes it a replica."""

    def __init__(
        self,
        node_id: str,
        port: int | None = None,
        *,
        replica_of: RedisProcess | None = None,
        extra_args: Sequence[str] = (),
    ):
        super().__init__(port)
        self.binary = _binary("redis-server")
        self.node_id = node_id
        self.replica_of = replica_of
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def spec(self) -> str:
        """This node in MEMCACHED_NODES form."""
        return f"{self.node_id}:{self.url}"

    def command(self) -> list[str]:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--daemonize", "no",
        ]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        return args + list(self.extra_args)

    def commandstats(self) -> dict[str, int]:
        """Calls per command since the last ``reset_stats`` (``INFO commandstats``)."""
        client = self.client()
        try:
            info = client.info("commandstats")
        finally:
            client.close()
        return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in info.items()}

    def reset_stats(self) -> None:
        client = self.client()
        try:
            client.config_resetstat()
        finally:
            client.close()

    def dbsize(self) -> int:
        client = self.client()
        try:
            return int(client.dbsize())
        finally:
            client.close()

    item_count = dbsize  # the name MemcachedProcess shares, for the scenarios of both kinds


class SentinelProcess(_RedisServerProcess):
    """One Sentinel on 127.0.0.1 watching ``master`` as service ``service``.

    Debian's ``redis-sentinel`` is redis-server started in Sentinel mode; the config file is
    written here because Sentinel rewrites it as it learns the topology.
    """

    def __init__(
        self,
        master: RedisProcess,
        service: str = "mymaster",
        *,
        quorum: int = 1,
        down_after: float = 1.0,
        port: int | None = None,
    ):
        super().__init__(port)
        self.binary = _binary("redis-sentinel")
        self.service = service
        config = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"sentinel monitor {service} 127.0.0.1 {master.port} {quorum}",
            f"sentinel down-after-milliseconds {service} {int(down_after * 1000)}",
            f"sentinel failover-timeout {service} 10000",
            f"sentinel parallel-syncs {service} 1",
        ]
        self.config = self.workdir / "sentinel.conf"
        self.config.write_text("\n".join(config) + "\n")

    def command(self) -> list[str]:
        return [self.binary, str(self.config)]

    def master_port(self) -> int | None:
        """The port this Sentinel currently names as the master, or None if it cannot tell."""
        client = self.client(timeout=1.0)
        try:
            reply = client.sentinel_get_master_addr_by_name(self.service)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return None if not reply else int(reply[1])
