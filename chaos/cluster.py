"""The cluster one chaos run breaks: 2 nodes (or 3), 2 gunicorn instances of testproject, nginx.

It is the demo cluster (``demo/``: the same app instances, load balancer and testproject) with
the node kind and the session engine of the run, plus the faults a schedule names::

    with ChaosCluster(ENGINES["cache"], workdir, node_count=2) as cluster:
        cluster.apply(Step(6.0, "kill", "node:n1"))

Every process it starts is stopped on exit; every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from demo.cluster import Cluster
from demo.processes import AppInstance
from tests.redis_servers import RedisProcess
from tests.servers import MemcachedProcess

from .engines import Engine
from .schedule import Step, node_ids

logger = logging.getLogger(__name__)

REPLICATION_TIMEOUT = 10.0
Node = MemcachedProcess | RedisProcess


def _nodes(engine: Engine, count: int) -> dict[str, Node]:
    """n1..n<count>; for a replicated engine every Redis node after n1 is a replica of n1."""
    ids = node_ids(count)
    if engine.nodes == "memcached":
        # Room for every session of a run: evictions would be losses no engine caused.
        return {node_id: MemcachedProcess(node_id, memory_mb=256) for node_id in ids}
    primary = RedisProcess(ids[0])
    replica_of = primary if engine.replicated else None
    return {primary.node_id: primary,
            **{node_id: RedisProcess(node_id, replica_of=replica_of) for node_id in ids[1:]}}


class ChaosCluster(Cluster):
    """The demo cluster with the run's nodes and engine, and the faults a schedule names."""

    def __init__(self, engine: Engine, workdir: Path, node_count: int = 2):
        self.engine = engine
        super().__init__(workdir=workdir, nodes=_nodes(engine, node_count), env=engine.env)

    def prepare_nodes(self) -> None:
        if self.engine.replicated:
            for node in list(self.nodes.values())[1:]:
                assert isinstance(node, RedisProcess)
                self._wait_replication(node)

    @staticmethod
    def _wait_replication(replica: RedisProcess) -> None:
        """Until the replica has synced: writes before that would not be replicated."""
        deadline = time.monotonic() + REPLICATION_TIMEOUT
        while time.monotonic() < deadline:
            client = replica.client(timeout=1.0)
            try:
                if client.info("replication").get("master_link_status") == "up":
                    return
            finally:
                client.close()
            time.sleep(0.05)
        raise RuntimeError(f"redis replica {replica.node_id} did not sync within "
                           f"{REPLICATION_TIMEOUT:.0f}s")

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
    def live_app_urls(self) -> list[str]:
        return [app.url for app in self.apps.values() if app.alive]

    def log_paths(self) -> list[Path]:
        return sorted(self.workdir.glob("*.log"))
