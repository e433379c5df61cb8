"""``manage.py msm_drain ID``: move every session off a node in DRAINING_NODES, now.

Then the node can be removed from MEMCACHED_NODES and listed in RETIRED_NODES: old cookies that
name it follow the forwards its sessions left (``ops.drain``). Exit status 0 when every session
moved and the repair after it found every live session with two good copies.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_msm.ops.drain import DrainReport, drain
from django_msm.runtime import get_cluster

DRAIN_INCOMPLETE = 2


class Command(BaseCommand):
    help = "Move every session off a node listed in DRAINING_NODES (then retire it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node", metavar="ID", help="The node to drain (in DRAINING_NODES).")
        parser.add_argument("--json", action="store_true", help="Print a JSON document.")
        parser.add_argument("--rate", type=int, metavar="N",
                            help="Sessions moved per second (default REPAIR_RATE; 0: no limit).")

    def handle(self, *args: Any, **options: Any) -> None:
        cluster = get_cluster()
        node_id = options["node"]
        if node_id not in {node.id for node in cluster.registry.draining}:
            raise CommandError(f"node {node_id!r} is not in DRAINING_NODES: list it there first, "
                               "so that no new session or backup lands on it")
        tty = self.stdout.isatty() and not options["json"]
        report = drain(cluster, node_id, options["rate"], self._progress if tty else None)
        if tty:
            self.stdout.write("")
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            repair = report.repair
            self.stdout.write(
                f"Node {node_id}: {report.moved} sessions moved, {report.gone} gone meanwhile, "
                f"{report.busy} busy (locked), {report.failed} failed; {report.seconds:.1f} s\n"
                f"Repair after: {repair.restored if repair else 0} copies restored, "
                f"{repair.removed if repair else 0} removed from their old places"
            )
        if not report.complete:
            raise CommandError("drain incomplete: run it again (sessions left: "
                               f"{report.busy + report.failed})", returncode=DRAIN_INCOMPLETE)

    def _progress(self, report: DrainReport) -> None:
        self.stdout.write(f"\rnode {report.node}: {report.moved} moved, {report.gone} gone",
                          ending="")
        self.stdout.flush()
