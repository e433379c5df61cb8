"""The cluster one chaos run breaks: 2 nodes, 2 gunicorn instances of testproject, nginx.

It is the demo cluster (``demo/``: the same app instances, load balancer and testproject) with
the node kind and the session engine of the run, plus the faults a schedule names::

    with ChaosCluster(ENGINES["cache"], workdir) as cluster:
        cluster.apply(Step(6.0, "kill", "node:n1"))

Every process it starts is stopped on exit; every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from demo.balancer import LoadBalancer
from demo.processes import PROJECT_DIR, AppInstance
from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess, free_port

from .engines import Engine
from .schedule import Step

logger = logging.getLogger(__name__)

NODE_IDS = ("n1", "n2")
APP_NAMES = ("app1", "app2")
COMMAND_TIMEOUT = 60.0
REPLICATION_TIMEOUT = 10.0
Node = MemcachedProcess | RedisProcess


def _nodes(engine: Engine) -> dict[str, Node]:
    if engine.nodes == "memcached":
        # Room for every session of a run: evictions would be losses no engine caused.
        return {node_id: MemcachedProcess(node_id, memory_mb=256) for node_id in NODE_IDS}
    primary = RedisProcess("n1")
    replica = RedisProcess("n2", replica_of=primary if engine.replicated else None)
    return {"n1": primary, "n2": replica}


class ChaosCluster:
    """Starts the cluster for one engine, applies schedule steps, stops everything."""

    def __init__(self, engine: Engine, workdir: Path):
        self.engine = engine
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = _nodes(engine)
        self.apps = {
            name: AppInstance(name, free_port(), self._env(name), workdir) for name in APP_NAMES
        }
        ports = {name: app.port for name, app in self.apps.items()}
        self.balancer = LoadBalancer(free_port(), ports, workdir, sticky=False)

    @property
    def node_spec(self) -> str:
        return ",".join(node.spec for node in self.nodes.values())

    def _env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.engine.env)
        env.update({
            "MSM_DEMO_INSTANCE": name,
            "MSM_DEMO_NODES": self.node_spec,
            "MSM_DEMO_MODE": "non-sticky",
            "MSM_DEMO_DB": str(self.workdir / "chaos.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ChaosCluster:
        try:
            for node in self.nodes.values():
                node.start()
            if self.engine.replicated:
                self._wait_replication()
            self._migrate()
            for app in self.apps.values():
                app.spawn_server()
            for app in self.apps.values():
                app.wait_ready()
            self.balancer.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _migrate(self) -> None:
        subprocess.run(
            [sys.executable, str(PROJECT_DIR / "manage.py"), "migrate", "--noinput"],
            env=self._env("manage"), cwd=PROJECT_DIR, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT, check=True,
        )

    def _wait_replication(self) -> None:
        """Until the replica has synced: writes before that would not be replicated."""
        replica = self.nodes["n2"]
        assert isinstance(replica, RedisProcess)
        deadline = time.monotonic() + REPLICATION_TIMEOUT
        while time.monotonic() < deadline:
            client = replica.client(timeout=1.0)
            try:
                if client.info("replication").get("master_link_status") == "up":
                    return
            finally:
                client.close()
            time.sleep(0.05)
        raise RuntimeError(f"redis replica n2 did not sync within {REPLICATION_TIMEOUT:.0f}s")

    def stop(self) -> None:
        """Stop everything that was started; never raises for a process already gone."""
        for process in [self.balancer, *self.apps.values()]:
            try:
                process.stop()
            except Exception:  # keep going: the rest must be stopped too
                logger.exception("could not stop %s", process.name)
        for node in self.nodes.values():
            node.stop()

    def __enter__(self) -> ChaosCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- faults -----------------------------------------------------------------------------------
    def apply(self, step: Step) -> None:
        """Carry out one schedule step (blocking until a restarted process answers)."""
        kind, _, name = step.target.partition(":")
        if kind == "node":
            self._node_action(self.nodes[name], step.action)
        else:
            self._app_action(self.apps[name], step.action)

    @staticmethod
    def _node_action(node: Node, action: str) -> None:
        if action == "kill":
            node.kill()
        elif action == "restart":
            node.start()  # same port, no data: a rebooted node
        elif action == "pause":
            node.pause()
        else:
            node.resume()

    @staticmethod
    def _app_action(app: AppInstance, action: str) -> None:
        if action == "kill":
            app.kill()
        elif action == "restart":
            app.start()
        elif app.popen is not None:
            os.killpg(app.popen.pid, signal.SIGSTOP if action == "pause" else signal.SIGCONT)

    # -- looking ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.balancer.url

    def live_app_urls(self) -> list[str]:
        return [app.url for app in self.apps.values() if app.alive]

    def log_paths(self) -> list[Path]:
        return sorted(self.workdir.glob("*.log"))
