"""The demo cluster: 2 memcached nodes, 2 gunicorn instances of testproject, nginx in front.

Usage::

    with Cluster() as cluster:          # everything on free 127.0.0.1 ports
        print(cluster.url)              # the load balancer
        cluster.kill_node("n1")         # SIGKILL memcached n1
        cluster.restart_node("n1")      # back, empty, on the same port
        cluster.kill_app("app1")        # SIGKILL gunicorn app1 and its worker

Everything it started is stopped on exit, on an exception and on Ctrl-C. Its work folder
(``.cache/demo/run-*``: SQLite file, nginx config, logs) is removed unless ``keep_workdir``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.servers import MemcachedProcess, free_port

from .balancer import LoadBalancer
from .processes import PROJECT_DIR, ROOT, AppInstance

logger = logging.getLogger(__name__)

MODES = ("non-sticky", "sticky")
NODE_IDS = ("n1", "n2")
APP_NAMES = ("app1", "app2")
WORK_ROOT = ROOT / ".cache" / "demo"
COMMAND_TIMEOUT = 60.0


class Cluster:
    """Starts, breaks, mends and stops the demo's processes."""

    def __init__(
        self,
        mode: str = "non-sticky",
        keep_workdir: bool = False,
        workdir: Path | None = None,
        nodes: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        narrate: bool = False,
    ):
        """``workdir``, ``nodes`` and ``env`` let other harnesses (chaos/) run the same
        cluster with their own nodes and session engine; a given ``workdir`` is kept.
        ``narrate``: the app instances write what django_msm did to ``events_path``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.keep_workdir = keep_workdir or workdir is not None
        self.extra_env = env or {}
        if workdir is None:
            WORK_ROOT.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT))
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.events_path = workdir / "events.jsonl" if narrate else None
        self.nodes = nodes or {node_id: MemcachedProcess(node_id) for node_id in NODE_IDS}
        self.apps = {
            name: AppInstance(name, free_port(), self._app_env(name), self.workdir)
            for name in APP_NAMES
        }
        ports = {name: app.port for name, app in self.apps.items()}
        self.balancer = LoadBalancer(free_port(), ports, self.workdir, sticky=mode == "sticky")

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def node_spec(self) -> str:
        return ",".join(node.spec for node in self.nodes.values())

    def _app_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env.update({
            "MSM_DEMO_INSTANCE": name,
            "MSM_DEMO_NODES": self.node_spec,
            "MSM_DEMO_MODE": self.mode,
            "MSM_DEMO_DB": str(self.workdir / "demo.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "PYTHONUNBUFFERED": "1",
        })
        if self.events_path is not None and name in APP_NAMES:  # not manage.py's processes
            env["MSM_DEMO_EVENTS"] = str(self.events_path)
        return env

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Cluster:
        try:
            for node in self.nodes.values():
                node.start()
            self.prepare_nodes()
            self.manage("migrate", "--noinput", check=True)
            for app in self.apps.values():
                app.spawn_server()  # both boot at once; then wait for each
            for app in self.apps.values():
                app.wait_ready()
            self.balancer.start()
        except BaseException:
            self.stop()
            raise
        return self

    def prepare_nodes(self) -> None:
        """After the nodes start, before the apps do (a hook: nothing to do here)."""

    def stop(self) -> None:
        """Stop everything that was started; never raises for a process already gone."""
        for process in [self.balancer, *self.apps.values()]:
            try:
                process.stop()
            except Exception:  # keep going: the rest must be stopped too
                logger.exception("could not stop %s", process.name)
        for node in self.nodes.values():
            node.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- breaking and mending -------------------------------------------------------------------
    def kill_node(self, node_id: str) -> None:
        self.nodes[node_id].kill()

    def restart_node(self, node_id: str) -> None:
        """Start the node again on its port, empty, as a rebooted memcached."""
        self.nodes[node_id].start()

    def kill_app(self, name: str) -> None:
        self.apps[name].kill()

    def restart_app(self, name: str) -> None:
        self.apps[name].start()

    # -- looking ------------------------------------------------------------------------------
    def node_has(self, node_id: str, key: str) -> bool:
        """True if memcached ``node_id`` holds ``key`` (a direct look, for the narration)."""
        port = self.nodes[node_id].port
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(f"mg {key}\r\n".encode())
                return sock.recv(64).startswith(b"HD")
        except OSError:
            return False

    def manage(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``testproject/manage.py`` with the cluster's settings, bounded in time."""
        return subprocess.run(
            [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
            env=self._app_env("manage"), cwd=PROJECT_DIR, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT, check=check,
        )


def has_msm_status() -> bool:
    """True once django_msm ships the ``msm_status`` management command."""
    try:
        return importlib.util.find_spec("django_msm.management.commands.msm_status") is not None
    except ImportError:
        return False
