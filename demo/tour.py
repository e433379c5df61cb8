"""The narrated tour: the seeds' msm tests, replayed against the demo cluster through nginx.

normal traffic → kill the memcached node holding the session → the session moves to the other
node under a new key, the user still logged in → the node comes back → kill the app instance
that served → the other one takes over. Each step says what it does, what it saw, and checks
it; ``run()`` is True only if every check held. ``msm_status`` is shown between steps when
django_msm has it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django_msm.core.keys import BACKUP_PREFIX

from .client import ShopClient
from .cluster import Cluster, has_msm_status

DEMO_USER = ("demo", "demo")
TRAFFIC_VIEWS = 6
REJOIN_TIMEOUT = 20.0
Report = dict[str, Any]


def describe(report: Report) -> str:
    cart = ", ".join(report["cart"]) or "(empty)"
    return (
        f"{report['instance']} served · key {report['session_key']} · primary "
        f"{report['primary']} · backup {report['backup'] or 'none'} · user "
        f"{report['user'] or 'anonymous'}"
        f" · visits {report['visits']} · cart {cart}"
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

    # -- narration ------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.out(f"    {text}")

    def expect(self, condition: bool, text: str) -> bool:
        self.checks += 1
        self.out(f"    {'ok  ' if condition else 'FAIL'} {text}")
        if not condition:
            self.failures.append(text)
        return condition

    def view(self) -> Report:
        """One page view through the load balancer, narrated."""
        self.last = self.client.status()
        self.say(describe(self.last))
        return self.last

    def show_logs(self) -> None:
        """What django_msm logged in the app instances since the last look."""
        for app in self.cluster.apps.values():
            for line in app.new_log_lines():
                if "django_msm" in line:
                    self.say(f"log {line}")

    def show_msm_status(self) -> None:
        if not has_msm_status():
            return
        result = self.cluster.manage("msm_status")
        self.say(f"$ manage.py msm_status  (exit {result.returncode})")
        for line in (result.stdout + result.stderr).splitlines()[:30]:
            self.out(f"      {line}".rstrip())

    def still_logged_in(self, report: Report, cart: list[str]) -> None:
        self.expect(report["user"] == DEMO_USER[0], f"still logged in as {DEMO_USER[0]}")
        self.expect(report["cart"] == cart, f"cart intact: {', '.join(cart)}")

    # -- steps --------------------------------------------------------------------------------
    def open_shop(self) -> None:
        """Open the shop through nginx, anonymously."""
        self.say(f"GET {self.cluster.url}/")
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
        reports = [self.view() for _ in range(TRAFFIC_VIEWS)]
        served = {report["instance"] for report in reports}
        if self.sticky:
            self.expect(len(served) == 1, f"one instance served every view: {sorted(served)}")
        else:
            self.expect(served == set(self.cluster.apps),
                        f"both instances served: {sorted(served)}")
        self.expect(len({r["session_key"] for r in reports}) == 1, "the key did not change")
        self.expect(all(r["user"] == DEMO_USER[0] for r in reports), "logged in on every view")
        self._expect_copies(reports[-1])

    def _expect_copies(self, report: Report) -> None:
        key, primary, backup = report["session_key"], report["primary"], report["backup"]
        self.expect(self.cluster.node_has(primary, key), f"memcached {primary} holds {key}")
        self.expect(self.cluster.node_has(backup, BACKUP_PREFIX + key),
                    f"memcached {backup} holds {BACKUP_PREFIX}{key}")

    def kill_primary_node(self) -> None:
        """Kill the memcached node holding the session's primary copy."""
        old, cart = self.last, self.last["cart"]
        dead = old["primary"]
        (survivor,) = set(self.cluster.nodes) - {dead}
        self.say(f"kill -9 memcached {dead} (port {self.cluster.nodes[dead].port})")
        self.cluster.kill_node(dead)
        self.killed_node = dead
        report = self.view()
        self.show_logs()
        self.still_logged_in(report, cart)
        self.say(f"old key {old['session_key']}")
        self.say(f"new key {report['session_key']}")
        self.expect(report["session_key"] != old["session_key"], "the session got a new key")
        self.expect(report["primary"] == survivor, f"its primary copy moved to {survivor}")
        again = [self.view() for _ in range(2)]
        self.expect(all(r["session_key"] == report["session_key"] for r in again),
                    "every instance serves the new key")
        self.expect(self.cluster.node_has(survivor, report["session_key"]),
                    f"memcached {survivor} holds the new key")

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
        self.show_logs()
        self.still_logged_in(report, cart)
        self.expect(report["session_key"] == key, "the session stays on its new node (as msm)")
        self.expect(self._backup_back(report, returning),
                    f"its backup copy is on {returning} again")

    def _backup_back(self, report: Report, node_id: str) -> bool:
        key = BACKUP_PREFIX + report["session_key"]
        return report["backup"] == node_id and self.cluster.node_has(node_id, key)

    def kill_app_instance(self) -> None:
        """Kill the app instance that served the last page."""
        victim, cart = self.last["instance"], self.last["cart"]
        (survivor,) = set(self.cluster.apps) - {victim}
        self.say(f"kill -9 gunicorn {victim} and its worker")
        self.cluster.kill_app(victim)
        reports = [self.view() for _ in range(4)]
        self.expect(all(r["instance"] == survivor for r in reports),
                    f"{survivor} served every view")
        for report in reports[-1:]:
            self.still_logged_in(report, cart)
        if self.sticky:  # the key now names the instance that holds the session (jvmRoute)
            self.expect(reports[-1]["session_key"].endswith(f".{survivor}"),
                        f"the key's route is now {survivor}")
        else:
            self.expect(len({r["session_key"] for r in reports}) == 1, "the key did not change")
        self.client.add_to_cart("cherry")
        self.expect(self.view()["cart"] == [*cart, "cherry"], "the cart still takes a cherry")

    # -- running ------------------------------------------------------------------------------
    def steps(self) -> list[Callable[[], None]]:
        return [self.open_shop, self.log_in, self.fill_cart, self.normal_traffic,
                self.kill_primary_node, self.restart_node, self.kill_app_instance]

    def run(self) -> bool:
        started = time.monotonic()
        steps = self.steps()
        self.out(f"Tour of the {self.cluster.mode} demo cluster at {self.cluster.url}/")
        for number, step in enumerate(steps, 1):
            self.out(f"\n[{number}/{len(steps)}] {(step.__doc__ or step.__name__).strip()}")
            try:
                step()
            except Exception as exc:  # narrate it as a failed step, then stop
                self.expect(False, f"step raised {exc!r}")
            if self.failures:
                break
            self.show_msm_status()
        verdict = "every step behaved as narrated" if not self.failures else "FAILED"
        self.out(f"\nTour: {verdict} ({self.checks} checks, {len(self.failures)} failed, "
                 f"{time.monotonic() - started:.1f} s)")
        return not self.failures
