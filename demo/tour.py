"""The narrated tour: msm's failover scenarios, replayed against the demo cluster through nginx.

normal traffic → kill the memcached node holding the session → the session moves to the other
node under a new key, the user still logged in → the node comes back → kill the app instance
that served → the other one takes over. Each step says what it does and what it saw, tells what
django_msm did under the request that met the failure (``narration.py``), says why nobody was
logged out, and checks it; ``run()`` is True only if every check held. A short status from
``msm_status --json`` follows the key steps. Session keys are shown by their node part only
(``…-n1``): a key is a credential.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from django_msm.core.keys import BACKUP_PREFIX, BASE_LENGTH

from .client import ShopClient
from .cluster import Cluster
from .narration import Event, EventTail, Narrator
from .status import status_lines

DEMO_USER = ("demo", "demo")
TRAFFIC_VIEWS = 6
REJOIN_TIMEOUT = 20.0
WIDTH = 100
Report = dict[str, Any]


def short_key(key: str | None) -> str:
    """The node and route a key names, without its secret part: ``…-n1.app2``."""
    return "(none)" if key is None else "…" + key[BASE_LENGTH:]


def describe(report: Report) -> str:
    backup = f"backup {report['backup']}" if report["backup"] else "no backup"
    return (
        f"{report['instance']} served · key {short_key(report['session_key'])} · "
        f"primary {report['primary']}, {backup} · {report['user'] or 'anonymous'} · "
        f"visits {report['visits']} · cart {', '.join(report['cart']) or '(empty)'}"
    )


class Tour:
    """Runs the steps in order; stops at the first step whose checks fail."""

    def __init__(self, cluster: Cluster, out: Callable[[str], None] = print):
        self.cluster = cluster
        self.client = ShopClient(cluster.url)
        self.out = out
        self.sticky = cluster.mode == "sticky"
        self.failures: list[str] = []
        self.checks = 0
        self.last: Report = {}
        self.killed_node = ""
        self.events = EventTail(cluster.events_path) if cluster.events_path else None
        self.narrator = Narrator(lambda event: f"      {event.instance}: ", window=float("inf"),
                                 node_runs=self._node_runs)

    # -- narration ------------------------------------------------------------------------------
    def _node_runs(self, node_id: str) -> bool:
        node = self.cluster.nodes.get(node_id)
        return node is not None and node.process is not None and node.process.poll() is None

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    def why(self, text: str) -> None:
        """The plain sentence on why the user is still logged in (after the repeats' count)."""
        self.flush()
        self.out(textwrap.fill(text, WIDTH, initial_indent="    Why: ",
                               subsequent_indent="         "))

    def expect(self, condition: bool, text: str) -> bool:
        self.checks += 1
        self.out(f"    {'ok  ' if condition else 'FAIL'} {text}")
        if not condition:
            self.failures.append(text)
        return condition

    def flush(self) -> None:
        for line in self.narrator.flush():
            self.out(line)

    def told(self) -> list[Event]:
        """Tell what django_msm did since the last look, under the view that caused it."""
        events = self.events.read() if self.events is not None else []
        for line in self.narrator.lines(events):
            self.out(line)
        return events

    def view(self, quiet: bool = False) -> Report:
        """One page view through the load balancer, and what django_msm did meanwhile."""
        self.last = self.client.status()
        if not quiet:
            self.say(describe(self.last))
        self.told()
        return self.last

    def show_status(self) -> None:
        result = self.cluster.manage("msm_status", "--json")
        for line in status_lines(result.stdout, result.stderr, result.returncode):
            self.out(f"    {line}")

    def still_logged_in(self, report: Report, cart: list[str]) -> None:
        self.expect(report["user"] == DEMO_USER[0], f"still logged in as {DEMO_USER[0]}")
        self.expect(report["cart"] == cart, f"cart intact: {', '.join(cart)}")

    # -- steps --------------------------------------------------------------------------------
    def open_shop(self) -> None:
        """Open the shop through nginx, anonymously."""
        report = self.view()
        self.expect(report["user"] is None, "anonymous visitor")
        self.expect(report["primary"] is not None, "the new session key names its primary node")
        self.expect(report["backup"] not in (None, report["primary"]), "backup on the other node")

    def log_in(self) -> None:
        """Log in as demo (password demo)."""
        before = self.last["session_key"]
        self.client.log_in(*DEMO_USER)
        report = self.view()
        self.expect(report["user"] == DEMO_USER[0], f"logged in as {DEMO_USER[0]}")
        self.expect(report["session_key"] != before, "Django gave the session a new key at login")

    def fill_cart(self) -> None:
        """Put an apple and a pear into the cart."""
        for item in ("apple", "pear"):
            self.client.add_to_cart(item)
        self.expect(self.view()["cart"] == ["apple", "pear"], "cart holds apple, pear")

    def normal_traffic(self) -> None:
        """Normal traffic: six page views through nginx."""
        reports = [self.view(quiet=True) for _ in range(TRAFFIC_VIEWS)]
        served = [report["instance"] for report in reports]
        self.say(f"served by {', '.join(served)} · key {short_key(reports[-1]['session_key'])} "
                 f"every time · visits {reports[0]['visits']} to {reports[-1]['visits']}")
        if self.sticky:
            self.expect(len(set(served)) == 1, "one instance served every view (sticky)")
        else:
            self.expect(set(served) == set(self.cluster.apps), "both instances served")
        self.expect(len({r["session_key"] for r in reports}) == 1, "the key did not change")
        self.expect(all(r["user"] == DEMO_USER[0] for r in reports), "logged in on every view")
        self._expect_copies(reports[-1])

    def _expect_copies(self, report: Report) -> None:
        key, primary, backup = report["session_key"], report["primary"], report["backup"]
        self.expect(self.cluster.node_has(primary, key),
                    f"memcached {primary} holds the primary copy")
        self.expect(self.cluster.node_has(backup, BACKUP_PREFIX + key),
                    f"memcached {backup} holds the backup copy ({BACKUP_PREFIX}<key>)")

    def kill_primary_node(self) -> None:
        """Kill the memcached node holding the session's primary copy."""
        old, cart = self.last, self.last["cart"]
        dead = old["primary"]
        (survivor,) = set(self.cluster.nodes) - {dead}
        node = self.cluster.nodes[dead]
        self.say(f"kill -9 memcached {dead} (pid {node.process.pid}, port {node.port})")
        self.cluster.kill_node(dead)
        self.killed_node = dead
        report = self.view()
        self.still_logged_in(report, cart)
        self.expect(report["session_key"] != old["session_key"],
                    f"the session got a new key: {short_key(old['session_key'])} → "
                    f"{short_key(report['session_key'])}")
        self.expect(report["primary"] == survivor, f"its primary copy moved to {survivor}")
        again = [self.view() for _ in range(2)]
        self.expect(all(r["session_key"] == report["session_key"] for r in again),
                    "every instance serves the new key")
        self.expect(self.cluster.node_has(survivor, report["session_key"]),
                    f"memcached {survivor} holds the new key")
        self.why(f"every save had also written a backup copy of the session to {survivor}. "
                 f"When {dead} died, {report['instance']} read that copy, saved the session "
                 f"under a new key whose primary is {survivor}, and sent the browser the new "
                 "cookie in the same response.")

    def restart_node(self) -> None:
        """Bring the killed node back, empty, on the same port."""
        key, cart = self.last["session_key"], self.last["cart"]
        returning = self.killed_node
        self.say(f"start memcached {returning} again (port {self.cluster.nodes[returning].port})")
        self.cluster.restart_node(returning)
        deadline = time.monotonic() + REJOIN_TIMEOUT
        report = self.view()
        while not self._backup_back(report, returning) and time.monotonic() < deadline:
            time.sleep(0.5)
            report = self.view()
        self.still_logged_in(report, cart)
        self.expect(report["session_key"] == key, "the session stays on its new node (as msm)")
        self.expect(self._backup_back(report, returning),
                    f"its backup copy is on {returning} again")
        self.why(f"nothing needed rescuing: the session lives on {report['primary']} now. "
                 f"{returning} came back empty, and the first save after it answered again "
                 "wrote the backup copy there, so the session has two copies once more.")

    def _backup_back(self, report: Report, node_id: str) -> bool:
        key = BACKUP_PREFIX + report["session_key"]
        return report["backup"] == node_id and self.cluster.node_has(node_id, key)

    def kill_app_instance(self) -> None:
        """Kill the app instance that served the last page."""
        victim, cart = self.last["instance"], self.last["cart"]
        (survivor,) = set(self.cluster.apps) - {victim}
        app = self.cluster.apps[victim]
        self.say(f"kill -9 gunicorn {victim} and its worker (pid {app.popen.pid}, port {app.port})")
        self.cluster.kill_app(victim)
        reports = [self.view() for _ in range(4)]
        self.expect(all(r["instance"] == survivor for r in reports),
                    f"{survivor} served every view")
        self.still_logged_in(reports[-1], cart)
        if self.sticky:  # the key now names the instance that holds the session (jvmRoute)
            self.expect(reports[-1]["session_key"].endswith(f".{survivor}"),
                        f"the key's route is now {survivor}")
        else:
            self.expect(len({r["session_key"] for r in reports}) == 1, "the key did not change")
        self.client.add_to_cart("cherry")
        self.expect(self.view()["cart"] == [*cart, "cherry"], "the cart still takes a cherry")
        self.why(self._app_why(victim, survivor, reports[-1]["primary"]))

    def _app_why(self, victim: str, survivor: str, primary: str) -> str:
        if not self.sticky:
            return (f"the session lives in memcached, not in the app process. nginx sent the "
                    f"requests to {survivor}, which read the same session from {primary}.")
        return (f"{victim} kept a copy of the session in its own memory, but every change was "
                f"also written to memcached. The key's route named {victim}, which was gone, "
                f"so nginx asked {survivor}; it took the session over from {primary} and put "
                f"its own name in the key, so nginx sends the browser to {survivor} from now on.")

    # -- running ------------------------------------------------------------------------------
    def steps(self) -> list[tuple[Callable[[], None], bool]]:
        """Each step, and whether a status follows it (the moments worth a look)."""
        return [(self.open_shop, False), (self.log_in, False), (self.fill_cart, False),
                (self.normal_traffic, True), (self.kill_primary_node, True),
                (self.restart_node, True), (self.kill_app_instance, True)]

    def run(self) -> bool:
        started = time.monotonic()
        steps = self.steps()
        self.out(f"\nTour of the {self.cluster.mode} demo cluster at {self.cluster.url}/")
        for number, (step, status) in enumerate(steps, 1):
            self.out(f"\n[{number}/{len(steps)}] {(step.__doc__ or step.__name__).strip()}")
            try:
                step()
            except Exception as exc:  # narrate it as a failed step, then stop
                self.expect(False, f"step raised {exc!r}")
            self.flush()
            if self.failures:
                break
            if status:
                self.show_status()
        verdict = "every step behaved as narrated" if not self.failures else "FAILED"
        self.out(f"\nTour: {verdict} ({self.checks} checks, {len(self.failures)} failed, "
                 f"{time.monotonic() - started:.1f} s)")
        return not self.failures
