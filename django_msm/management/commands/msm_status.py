"""``manage.py msm_status``: node health, session distribution and cluster-wide statistics.

A thin renderer: ``status.collect_status()`` gathers everything; ``render_text`` and
``status.to_dict`` are pure functions of the resulting ``ClusterStatus``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import Style, no_style

from django_msm.ops import redundancy
from django_msm.ops.status import ClusterStatus, NodeStatus, collect_status, to_dict

CHECK_FAILED = 2
COLUMNS = ("NODE", "ADDRESS", "KIND", "ROLE", "STATE", "PROBE", "LATENCY", "VERSION", "UPTIME",
           "MEMORY", "ITEMS", "EVICTIONS", "SESSIONS", "BACKUPS")


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"  # unreachable


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    if value < 1e-3:
        return f"{value * 1e6:g} us"
    return f"{value * 1e3:g} ms" if value < 1 else f"{value:g} s"


def _uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _node_row(node: NodeStatus) -> list[str]:
    probe = node.probe
    memory = "-" if probe.memory_used is None else (
        f"{_bytes(probe.memory_used)} / {_bytes(probe.memory_limit)}"
    )
    counts = node.counts
    return [
        node.label, node.address, node.kind, node.role, node.state,
        "up" if probe.up else "down",
        "-" if probe.latency_ms is None else f"{probe.latency_ms:.2f} ms",
        _text(probe.version), _uptime(probe.uptime_s), memory, _text(probe.items),
        _text(probe.evictions),
        "-" if counts is None else str(counts.sessions),
        "-" if counts is None else str(counts.backup_copies),
    ]


def _colour(cell: str, style: Style) -> str:
    painter = {"up": style.SUCCESS, "down": style.ERROR, "dead": style.ERROR,
               "quarantined": style.WARNING}.get(cell.strip())
    return painter(cell) if painter else cell


def _table(header: list[str], rows: list[list[str]], style: Style, colour: set[int]) -> list[str]:
    """Left-aligned columns two spaces apart; colours are applied after padding."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [
            _colour(cell.ljust(width), style) if i in colour else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return [style.MIGRATE_HEADING(lines[0]), *lines[1:]]


def _summary(status: ClusterStatus) -> str:
    if not status.counted:
        return "Sessions: not counted (--no-count)"
    line = (f"Sessions: {status.sessions} distinct, {status.primary_copies} primary copies, "
            f"{status.backup_copies} backup copies")
    coverage = status.backup_coverage
    if coverage is not None:
        line += f"; backup coverage {coverage:.1%}"
    return line + ("" if status.complete else " (not every node counted: lower bounds)")


def _statistics(status: ClusterStatus, style: Style) -> list[str]:
    instances = status.instances
    if not instances:
        return ["Statistics: none published (app processes publish every few seconds)"]
    total = status.statistics
    lines = [f"Statistics: {len(instances)} instance{'s' if len(instances) > 1 else ''}", ""]
    header = ["COUNTER", "TOTAL", *(figures.instance for figures in instances)]
    rows = [
        [name, str(count), *(str(f.counters.get(name, 0)) for f in instances)]
        for name, count in total.counters.items()
    ]
    lines += _table(header, rows, style, set()) if rows else ["(no counters yet)"]
    timing_rows = []
    for name, timing in total.timings.items():
        fmt = _bytes if name.endswith("size") else _seconds
        summary = timing.summary()
        timing_rows.append([name, str(timing.count),
                            *(fmt(summary[p]) for p in ("p50", "p95", "p99"))])
    if timing_rows:
        lines += ["", *_table(["TIMING", "COUNT", "P50", "P95", "P99"], timing_rows, style, set())]
    return lines


def render_text(status: ClusterStatus, style: Style) -> str:
    """The text report: node table, session totals, warnings, statistics."""
    lines = _table(list(COLUMNS), [_node_row(node) for node in status.nodes], style, {4, 5})
    lines += ["", _summary(status), ""]
    if status.redundancy is not None:  # --redundancy
        lines += ["Redundancy:", "", *_table(redundancy.HEADER, redundancy.rows(status, _bytes),
                                             style, set()), ""]
    warnings = status.warnings
    lines.append("Warnings:" if warnings else "Warnings: none")
    lines += [style.WARNING(f"  ! {warning}") for warning in warnings]
    lines += ["", *_statistics(status, style)]
    return "\n".join(lines) + "\n"


def render_json(status: ClusterStatus) -> str:
    return json.dumps(to_dict(status), indent=2) + "\n"


class Command(BaseCommand):
    help = "Show node health, the sessions and backups each node holds, and cluster statistics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true",
                            help="Print the stable JSON document (docs/operations.md).")
        parser.add_argument("--check", action="store_true",
                            help=f"Exit with status {CHECK_FAILED} when a node is down.")
        parser.add_argument("--watch", type=float, metavar="SECONDS",
                            help="Refresh every SECONDS until interrupted.")
        parser.add_argument("--no-count", action="store_true",
                            help="Skip counting sessions (probes and statistics only).")
        parser.add_argument("--redundancy", action="store_true",
                            help="Also read every copy: sessions with two good copies, with "
                            "one, stale copies and bytes per node (a dry run of msm_repair).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["watch"] is not None and (options["check"] or options["watch"] <= 0):
            raise CommandError("--watch needs a positive interval and cannot go with --check")
        coloured = options.get("force_color") or self.stdout.isatty()
        style = self.style if coloured else no_style()
        try:
            status = self._loop(options, style, coloured)
        except KeyboardInterrupt:
            if options["watch"] is None:
                raise
            return
        if options["check"] and status.down:
            names = ", ".join(node.label for node in status.down)
            raise CommandError(f"nodes down: {names}", returncode=CHECK_FAILED)

    def _loop(self, options: dict[str, Any], style: Style, coloured: bool) -> ClusterStatus:
        """Collect and print once, or every ``--watch`` seconds until interrupted."""
        while True:
            extra = {"check_copies": True} if options["redundancy"] else {}
            status = collect_status(count=not options["no_count"], **extra)
            if options["watch"] is not None and coloured and not options["json"]:
                self.stdout.write("\x1b[H\x1b[2J", ending="")  # clear the terminal
            output = render_json(status) if options["json"] else render_text(status, style)
            self.stdout.write(output, ending="")
            if options["watch"] is None:
                return status
            time.sleep(options["watch"])
