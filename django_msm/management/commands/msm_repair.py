"""``manage.py msm_repair``: give every live session two good copies again, now.

The same pass AUTO_REPAIR runs (``ops.repair.RepairPass``), for operators and cron. Exit status
0 when every live session has two good copies (after the repairs, or as found with
``--dry-run``), ``REPAIR_INCOMPLETE`` with the counts otherwise.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_msm.ops.autorepair import record_state
from django_msm.ops.inspectors import CountError, inspector_for
from django_msm.ops.repair import RepairPass
from django_msm.ops.repair_plan import RepairReport
from django_msm.runtime import get_cluster

REPAIR_INCOMPLETE = 2
BAR = 30


class Progress:
    """A one-line progress bar on a terminal: keys examined of those counted before."""

    def __init__(self, out: Any, total: int | None):
        self.out, self.total = out, total
        self.started = time.monotonic()

    def __call__(self, node: str, cursor: str | None, report: RepairReport) -> bool:
        done = report.sessions + report.tombstones
        rate = done / max(time.monotonic() - self.started, 1e-3)
        if self.total:
            share = min(done / self.total, 1.0)
            bar = "#" * int(share * BAR) + "-" * (BAR - int(share * BAR))
            line = f"\r[{bar}] {share:4.0%}  node {node}  {done} keys  {rate:,.0f}/s"
        else:
            line = f"\rnode {node}  {done} keys  {rate:,.0f}/s"
        self.out.write(line)
        self.out.flush()
        return True

    def close(self) -> None:
        self.out.write("\n")


def _text(report: RepairReport) -> str:
    verb = "found" if report.dry_run else "repaired"
    lines = [
        f"Sessions: {report.sessions} ({sum(report.two_copies.values())} with two good copies, "
        f"{report.single} with one, before the pass); tombstones: {report.tombstones}",
        f"Stale copies: {sum(report.stale.values())}; copies outside their places: "
        f"{report.extra}",
    ]
    if not report.dry_run:
        lines.append(f"Restored {report.restored}, replaced {report.replaced}, removed "
                     f"{report.removed}; requests won {report.raced}, taken back "
                     f"{report.undone}, left with one copy {report.failed}")
    lines.append(f"Nodes walked: {', '.join(report.scanned) or 'none'}; unreachable: "
                 f"{', '.join(report.unreachable) or 'none'}; {report.seconds:.1f} s ({verb})")
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Give every live session two good copies again (the pass AUTO_REPAIR runs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", metavar="ID", help="Walk only this node's keys.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Count what would be repaired; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print a JSON document.")
        parser.add_argument("--rate", type=int, metavar="N",
                            help="Keys examined per second (default REPAIR_RATE; 0: no limit).")

    def handle(self, *args: Any, **options: Any) -> None:
        cluster = get_cluster()
        if len(cluster.registry.nodes) < 2:
            raise CommandError("one node is configured: sessions have a single copy by design, "
                               "there is nothing to repair")
        node_id = options["node"]
        if node_id is not None and node_id not in {n.id for n in cluster.registry.nodes}:
            raise CommandError(f"no configured node has id {node_id!r}")
        if options["rate"] is not None and options["rate"] < 0:
            raise CommandError("--rate must be 0 (no limit) or more")
        whole = node_id is None and not options["dry_run"]
        survey = cluster.away.survey(notify=False) if whole else None
        progress = None
        if self.stdout.isatty() and not options["json"]:
            progress = Progress(self.stdout, self._total(cluster, node_id))
        repair = RepairPass(cluster, rate=options["rate"], dry_run=options["dry_run"],
                            only=node_id, on_batch=progress)
        report = repair.run()
        if progress is not None:
            progress.close()
        if survey is not None and not report.unreachable:
            record_state(cluster, survey, report)
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self.stdout.write(_text(report), ending="")
        if not report.complete:
            raise CommandError(
                f"redundancy incomplete: {report.single} sessions with one copy, "
                f"{sum(report.stale.values())} stale copies, {report.failed} not repaired, "
                f"unreachable nodes: {', '.join(report.unreachable) or 'none'}",
                returncode=REPAIR_INCOMPLETE,
            )

    @staticmethod
    def _total(cluster: Any, node_id: str | None) -> int | None:
        """About how many keys the pass will examine, counted first (for the bar only): the
        primary copies, and a single node's backup copies too."""
        total = 0
        config = cluster.config
        for node in cluster.registry.nodes:
            count = inspector_for(node).count
            if count is None or (node_id is not None and node.id != node_id):
                continue
            try:
                counts = count(cluster.registry.stores[node], config.storage_prefix,
                               config.operation_timeout)
            except CountError:
                return None
            total += counts.sessions + (counts.backup_copies if node_id else 0)
        return total or None
