"""AUTO_REPAIR: one app process in the whole cluster runs a repair pass when one is due.

Who notices: every process reads the marks on the nodes (``core.away.AwayMarks``, on the read
path every few seconds) and hears its own cluster's events (a node down or back, a backup
write that found no node). Either wakes this process's ``AutoRepair`` thread, started on the
first wake-up, so a process that never sees a fault never runs a thread.

What it does: it surveys the marks about once a second while a pass is due, waits until they
have been quiet for ``RETRY_TIMEOUT + 2 * OPERATION_TIMEOUT`` (another process may still skip a
node it quarantined that long after the node came back, and deletions it makes meanwhile leave
stale copies there), then takes the *lease*: ``msm:repair:<prefix>lease`` on the first node
that answers, created with ``add`` and renewed by compare-and-set while the pass runs. It
expires on the node's own clock (``LEASE_TTL``), so a killed holder is replaced. The holder
runs ``RepairPass``, keeps its progress beside the lease (a successor resumes where it
stopped), and at the end writes the ``RepairState`` covering what it reconciled to every node:
the other processes then see nothing due. Nothing of this runs on a request thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable

from ..core.cluster import Cluster
from ..core.nodes import Node
from ..core.repairstate import RepairState, Survey
from ..exceptions import NodeUnavailable
from .repair import RepairPass, Resume
from .repair_plan import RepairReport

logger = logging.getLogger(__name__)
LEASE_TTL = 30  # seconds; renewed at least every RENEW_EVERY while a pass runs
RENEW_EVERY = 5.0
POLL = 1.0  # seconds between surveys while a pass is due
STOP_WAIT = 5.0  # how long closing a cluster waits for its repair thread


class Lease:
    """The cluster-wide right to run a pass, held on the first node that answers."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.key = cluster.keys.repair("lease")
        self.owner = f"{os.getpid()}:{secrets.token_hex(8)}".encode()
        self.node: Node | None = None
        self.token: bytes | None = None
        self._renewed = 0.0

    def acquire(self) -> bool:
        registry = self.cluster.registry
        for node in registry.nodes:
            try:
                token = registry.call(
                    node, lambda s: s.add_versioned(self.key, self.owner, LEASE_TTL))
            except NodeUnavailable:
                continue
            self.node, self.token, self._renewed = node, token, time.monotonic()
            return token is not None
        return False

    def renew(self) -> bool:
        """Keep the lease (due every RENEW_EVERY); False once another process holds it."""
        if self.node is None or self.token is None:
            return False
        if time.monotonic() - self._renewed < RENEW_EVERY:
            return True
        token = self.token
        try:
            self.token = self.cluster.registry.call(
                self.node, lambda s: s.cas(self.key, self.owner, LEASE_TTL, token))
        except NodeUnavailable:
            self.token = None
        self._renewed = time.monotonic()
        return self.token is not None

    def release(self) -> None:
        if self.node is not None and self.token is not None:
            token = self.token
            try:
                self.cluster.registry.call(self.node, lambda s: s.delete_if(self.key, token))
            except NodeUnavailable:
                pass
        self.node = self.token = None

    # progress lives beside the lease, on the same node
    def save_progress(self, plan: str, done: list[str], node: str, cursor: str | None) -> None:
        if self.node is None:
            return
        key = self.cluster.keys.repair("progress")
        body = json.dumps({"plan": plan, "done": done, "node": node, "cursor": cursor}).encode()
        try:
            self.cluster.registry.call(self.node, lambda s: s.set(key, body, LEASE_TTL * 10))
        except NodeUnavailable:
            pass

    def load_progress(self, plan: str) -> Resume:
        key = self.cluster.keys.repair("progress")
        node = self.node
        try:
            data = self.cluster.registry.call(node, lambda s: s.get(key)) if node else None
            body = json.loads(data) if data else {}
        except (NodeUnavailable, ValueError):
            body = {}
        if body.get("plan") != plan:
            return Resume()
        return Resume(frozenset(body.get("done", ())), body.get("node"), body.get("cursor"))


def plan_id(survey: Survey) -> str:
    """Names what a pass is for, so a successor resumes only the same pass (stable across
    processes: no ``hash()``)."""
    return hashlib.sha1(repr(survey.fingerprint).encode()).hexdigest()[:16]


def record_state(cluster: Cluster, survey: Survey, report: RepairReport) -> RepairState:
    """Write the state the pass reconciled to every node it can reach: the generations and away
    tokens read before it started, for the nodes it walked to the end."""
    previous = survey.state or RepairState()
    walked = set(report.scanned) - set(report.unreachable)
    kept = {k: v for k, v in previous.away.items() if k not in walked}
    state = RepairState(
        seq=previous.seq + 1,
        topology=survey.topology,
        gens={**{k: v for k, v in previous.gens.items() if k not in walked},
              **{k: v for k, v in survey.gens.items() if k in walked}},
        away={**kept, **{k: tuple(sorted(v)) for k, v in survey.away.items() if k in walked}},
        down=tuple(sorted(report.unreachable)),
    )
    data, key, ttl = state.encode(), cluster.keys.repair("state"), cluster.away.ttl
    for node in cluster.registry.nodes:
        try:
            cluster.registry.call(node, lambda s: s.set(key, data, ttl))
        except NodeUnavailable:
            continue
    return state


def run_pass(cluster: Cluster, survey: Survey, lease: Lease | None = None,
             rate: int | None = None, stopped: Callable[[], bool] = lambda: False
             ) -> RepairReport:
    """A pass for ``survey``'s plan (resuming the lease's progress), its state recorded when
    it walked every node it could reach."""
    plan = plan_id(survey)
    resume = lease.load_progress(plan) if lease is not None else Resume()

    def on_batch(node: str, cursor: str | None, report: RepairReport) -> bool:
        if stopped():
            return False
        if lease is None:
            return True
        lease.save_progress(plan, report.scanned, node, cursor)
        return lease.renew()

    report = RepairPass(cluster, rate=rate, on_batch=on_batch, resume=resume).run()
    if len(set(report.scanned) | set(report.unreachable)) >= len(cluster.registry.nodes):
        record_state(cluster, survey, report)
    return report


class AutoRepair:
    """This process's part in AUTO_REPAIR: a thread woken by events and marks (see above)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        config = cluster.config
        self.quiet = config.retry_timeout + 2 * config.operation_timeout
        self.lease = Lease(cluster)
        self.last: RepairReport | None = None
        self._event = threading.Event()
        self._stopped = False
        self._active = False
        self._forced = False  # a backup write failed: one pass even if the marks say nothing
        self._fingerprint: tuple[object, ...] | None = None
        self._changed = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def wake(self, forced: bool = False) -> None:
        """Note that a pass may be due; start the thread if this process has none yet."""
        self._forced = self._forced or forced
        if self._stopped or len(self.cluster.registry.nodes) < 2:
            return
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked worker starts its own
                self._thread = threading.Thread(target=self._loop, name="msm-repair",
                                                daemon=True)
                self._thread.start()
        if not self._active:
            self._event.set()

    def _is_stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        self._stopped = True
        self._event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=STOP_WAIT)  # a pass stops at its next batch

    def _loop(self) -> None:
        while not self._stopped:
            self._event.wait(POLL if self._active else None)
            self._event.clear()
            if self._is_stopped():  # stop() may have run while this thread waited
                return
            try:
                self.step()
            except Exception:  # the thread must outlive any one failure
                logger.exception("automatic repair failed; it will try again")
                self._active = True

    def step(self) -> RepairReport | None:
        """Survey; when a pass is due and the marks were quiet long enough, run it under the
        lease. Return its report (None when none ran)."""
        survey = self.cluster.away.survey(notify=False)
        reasons = survey.needs_repair() + (["a backup write failed"] if self._forced else [])
        now = time.monotonic()
        if survey.fingerprint != self._fingerprint:
            self._fingerprint, self._changed = survey.fingerprint, now
        self._active = bool(reasons)
        if not reasons or now - self._changed < self.quiet or not self.lease.acquire():
            return None
        try:
            logger.info("repair pass starting: %s", "; ".join(reasons))
            self._forced = False
            report = self.last = run_pass(self.cluster, survey, self.lease,
                                          stopped=lambda: self._stopped)
        finally:
            self.lease.release()
        logger.info("repair pass done in %.1f s: %d sessions, %d restored, %d stale replaced, "
                    "%d extra removed, nodes unreachable: %s", report.seconds, report.sessions,
                    report.restored, report.replaced, report.removed,
                    ", ".join(report.unreachable) or "none")
        return report
