"""The serving phase of ``make demo``: what runs where, how to break it, and what happened.

``Serving(cluster).run()`` prints the shop's and the admin's address, every memcached node and
app instance with its PID and port and the commands that kill, pause, resume and restart it,
then narrates until Ctrl-C: a line when a process dies, pauses, resumes or comes back, and a
line for each thing django_msm did about it in an app instance (``narration.py``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .cluster import Cluster
from .control import ControlServer
from .narration import Event, EventTail, Narrator
from .processes import ROOT

TICK = 0.25  # how often the files and processes are looked at
STOP_WAIT = 120.0  # a restart in flight finishes before everything stops


def _python() -> str:
    """The interpreter as the visitor types it from the repository folder."""
    try:
        return str(Path(sys.executable).relative_to(ROOT))
    except ValueError:
        return sys.executable


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _stamp(event: Event) -> str:
    return f"{_clock(event.t)} {event.instance:<5} "


def state_of(popen: subprocess.Popen[bytes] | None) -> str:
    """``running``, ``paused`` (SIGSTOP) or why it is gone."""
    if popen is None:
        return "gone"
    code = popen.poll()
    if code is not None:
        return f"gone: killed by {signal.Signals(-code).name}" if code < 0 else \
            f"gone: exited with status {code}"
    try:
        stat = Path(f"/proc/{popen.pid}/stat").read_text()
    except OSError:
        return "running"
    return "paused" if stat.rsplit(")", 1)[-1].split()[0] in ("T", "t") else "running"


class Watched:
    """One process the visitor may break: how it is named, found and signalled."""

    def __init__(self, name: str, title: str, port: int, popen: Callable[[], object],
                 group: bool):
        self.name, self.title, self.port, self.group = name, title, port, group
        self._popen = popen
        self.seen: tuple[int | None, str] = (None, "")

    @property
    def popen(self) -> subprocess.Popen[bytes] | None:
        return self._popen()  # type: ignore[return-value]

    @property
    def pid(self) -> int | None:
        popen = self.popen
        return None if popen is None else popen.pid

    def commands(self) -> list[str]:
        """Crash, pause, resume, restart; an app instance is signalled with its worker."""
        target = f"-- -{self.pid}" if self.group else str(self.pid)
        return [f"kill -9 {target}", f"kill -STOP {target}", f"kill -CONT {target}",
                f"{_python()} -m demo restart {self.name}"]


def watched(cluster: Cluster) -> list[Watched]:
    nodes = [Watched(node_id, f"memcached {node_id}", node.port,
                     lambda node=node: node.process, group=False)
             for node_id, node in cluster.nodes.items()]
    apps = [Watched(name, f"gunicorn {name}", app.port, lambda app=app: app.popen, group=True)
            for name, app in cluster.apps.items()]
    return nodes + apps


class Serving:
    """Prints the banner, then narrates from a thread while the main thread waits for Ctrl-C."""

    def __init__(self, cluster: Cluster, out: Callable[[str], None] = print):
        self.cluster = cluster
        self.out = out
        self.processes = watched(cluster)
        self.lock = threading.Lock()  # one restart at a time, and none while stopping
        self.stopping = threading.Event()
        self.narrator = Narrator(_stamp, node_runs=self._node_runs)
        assert cluster.events_path is not None, "the cluster must be started with narrate=True"
        self.tail = EventTail(cluster.events_path, from_end=True)

    # -- the banner ---------------------------------------------------------------------------
    def banner(self, can_restart: bool) -> None:
        url, out = self.cluster.url, self.out
        out(f"\nServing {url}/   log in as demo, password demo")
        out(f"Admin   {url}/admin/   the same login")
        out(f"Logs    {self.cluster.workdir}")
        out(f"\nTry it: paste a command in another terminal (in {ROOT}), then reload the page.")
        out("  kill -9 crashes a process; kill -STOP pauses it (connections are accepted, nothing")
        out("  answers); kill -CONT resumes it" + (
            "; restart starts it again (memcached: empty, same port)." if can_restart else "."))
        out("  A paused app instance holds a request up to 30 s (nginx's read timeout), then "
            "nginx\n  asks the other one.")
        for process in self.processes:
            out(f"\n  {process.title:<14} pid {process.pid}  port {process.port}")
            for command in process.commands():
                if can_restart or "restart" not in command:
                    out(f"    {command}")
        out("\nWhat happens is told below, as it happens. Ctrl-C stops everything.\n")

    # -- narrating ----------------------------------------------------------------------------
    def _node_runs(self, node_id: str) -> bool:
        node = self.cluster.nodes.get(node_id)
        return node is not None and state_of(node.process) == "running"

    def look(self) -> list[str]:
        """New lines: processes that changed state, then what django_msm did."""
        lines = []
        for process in self.processes:
            now = (process.pid, state_of(process.popen))
            if now != process.seen and process.seen[0] is not None:
                lines += self._change(process, now)
            process.seen = now
        lines += self.narrator.lines(self.tail.read())
        lines += self.narrator.due(time.time())
        return lines

    def _change(self, process: Watched, now: tuple[int | None, str]) -> list[str]:
        pid, state = now
        stamp = f"{_clock(time.time())} demo  "
        if pid != process.seen[0] and state == "running":
            commands = " · ".join(process.commands()[:3])
            return [f"{stamp}{process.title} runs again: pid {pid}, port {process.port}",
                    f"{' ' * len(stamp)}  {commands}"]
        words = {"running": "resumed", "paused": "paused"}.get(state, state)
        return [f"{stamp}{process.title} (pid {pid}) {words}"]

    def _narrate(self) -> None:
        while not self.stopping.wait(TICK):
            for line in self.look():
                self.out(line)

    # -- restarting ---------------------------------------------------------------------------
    def restart(self, name: str) -> str:
        """Start ``name`` again (killing what is left of it first); the control socket's answer."""
        cluster = self.cluster
        with self.lock:
            if self.stopping.is_set():
                return "error: the demo is stopping"
            try:
                if name in cluster.nodes:
                    cluster.kill_node(name)
                    cluster.restart_node(name)
                    return f"ok: memcached {name} runs again, empty"
                if name in cluster.apps:
                    cluster.kill_app(name)
                    cluster.restart_app(name)
                    return f"ok: gunicorn {name} runs again"
            except Exception as exc:  # told to the asker; the demo keeps serving
                return f"error: {name} did not start: {exc}"
        names = ", ".join([*cluster.nodes, *cluster.apps])
        return f"error: no process named {name!r}; one of {names}"

    def run(self) -> None:
        """Serve until Ctrl-C (KeyboardInterrupt propagates once the threads are stopped)."""
        for process in self.processes:
            process.seen = (process.pid, state_of(process.popen))
        try:
            control: ControlServer | None = ControlServer(self.cluster.workdir, self.restart)
        except OSError as exc:  # e.g. a work folder path too long for a Unix socket
            self.out(f"(restart commands unavailable: {exc})")
            control = None
        self.banner(can_restart=control is not None)
        narrator = threading.Thread(target=self._narrate, name="demo-narrator", daemon=True)
        narrator.start()
        try:
            if control is not None:
                control.__enter__()
            while True:
                signal.pause()
        finally:
            self.stopping.set()
            narrator.join(timeout=5)
            if control is not None:
                control.__exit__(None, None, None)
            if self.lock.acquire(timeout=STOP_WAIT):  # a restart in flight ends first
                self.lock.release()
