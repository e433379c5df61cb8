"""``manage.py msm_status``: node health, session distribution and cluster-wide statistics.

A thin renderer: ``status.collect_status()`` gathers everything; ``render_text`` and
``status.to_dict`` are pure functions of the resulting ``ClusterStatus``.

The text fits 80 columns unless ``--wide``: the node table keeps what an operator scans for (is
it answering, how full, how many sessions), ``--wide`` adds the server's own details and one
statistics column per instance. To show something more, add a ``Column`` to ``COLUMNS`` or a
section function to ``SECTIONS``; both take the ``ClusterStatus`` and nothing else.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import Style, no_style

from django_msm.ops import redundancy
from django_msm.ops.status import ClusterStatus, NodeStatus, collect_status, to_dict
from django_msm.ops.units import age, duration, latency, plural, size, uptime

CHECK_FAILED = 2
WIDTH = 80
LEGEND = "PROBE is a check made just now; THIS PROCESS is what this process last saw."


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _memory_share(node: NodeStatus) -> str:
    """Narrow tables: how full the node is, or what it uses when it has no limit."""
    used, limit = node.probe.memory_used, node.probe.memory_limit
    if used is None:
        return "-"
    return f"{used / limit:.0%}" if limit else size(used)


def _memory(node: NodeStatus) -> str:
    probe = node.probe
    if probe.memory_used is None:
        return "-"
    return f"{size(probe.memory_used)} / {size(probe.memory_limit)}"


def _counted(value: Callable[[Any], int]) -> Callable[[NodeStatus], str]:
    return lambda node: "-" if node.counts is None else str(value(node.counts))


@dataclass(frozen=True)
class Column:
    """One column of the node table. ``only``: "wide" or "narrow" tables only (None: both);
    ``wanted``: shown in narrow tables only when this says so (wide tables show everything)."""

    header: str
    cell: Callable[[NodeStatus], str]
    only: str | None = None
    coloured: bool = False
    wanted: Callable[[ClusterStatus], bool] | None = None

    def shown(self, status: ClusterStatus, wide: bool) -> bool:
        if self.only is not None and self.only != ("wide" if wide else "narrow"):
            return False
        return wide or self.wanted is None or self.wanted(status)


COLUMNS = (
    Column("NODE", lambda n: n.label),
    Column("ADDRESS", lambda n: n.address, only="wide"),
    Column("KIND", lambda n: n.kind, only="wide"),
    Column("ROLE", lambda n: n.role, wanted=lambda s: any(n.failover for n in s.nodes)),
    Column("PROBE", lambda n: "up" if n.probe.up else "down", coloured=True),
    Column("LATENCY", lambda n: latency(n.probe.latency_ms)),
    Column("VERSION", lambda n: _text(n.probe.version), only="wide"),
    Column("UPTIME", lambda n: uptime(n.probe.uptime_s), only="wide"),
    Column("MEMORY", _memory_share, only="narrow"),
    Column("MEMORY", _memory, only="wide"),
    Column("ITEMS", lambda n: _text(n.probe.items), only="wide"),
    Column("EVICTED", lambda n: _text(n.probe.evictions)),
    Column("SESSIONS", _counted(lambda counts: counts.sessions)),
    Column("BACKUPS", _counted(lambda counts: counts.backup_copies)),
    Column("THIS PROCESS", lambda n: n.process_view, coloured=True),
)


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


def _nodes(status: ClusterStatus, style: Style, wide: bool) -> list[str]:
    columns = [column for column in COLUMNS if column.shown(status, wide)]
    rows = [[column.cell(node) for column in columns] for node in status.nodes]
    coloured = {i for i, column in enumerate(columns) if column.coloured}
    return [*_table([c.header for c in columns], rows, style, coloured), LEGEND]


def _sessions(status: ClusterStatus, style: Style, wide: bool) -> list[str]:
    if not status.counted:
        return ["Sessions: not counted (--no-count)"]
    primaries, backups = status.primary_copies or 0, status.backup_copies or 0
    copies = (plural(primaries, "primary copy", "primary copies"),
              plural(backups, "backup copy", "backup copies"))
    lines = [f"Sessions: {status.sessions} distinct ({copies[0]}, {copies[1]})"]
    coverage = status.backup_coverage
    if coverage is not None:
        lines.append(f"Backup coverage: {coverage:.1%} of primary copies have their backup copy")
    if not status.complete:
        lines.append("Not every node was counted: these figures are lower bounds.")
    return lines


def _warnings(status: ClusterStatus, style: Style, wide: bool) -> list[str]:
    warnings = status.warnings
    lines = ["Warnings:" if warnings else "Warnings: none"]
    for warning in warnings:
        wrapped = [f"  ! {warning}"] if wide else textwrap.wrap(
            warning, WIDTH, initial_indent="  ! ", subsequent_indent="    "
        )
        lines += [style.WARNING(line) for line in wrapped]
    return lines


def _published(status: ClusterStatus) -> str:
    ages = sorted(a for a in map(status.statistics_age, status.instances) if a is not None)
    if not ages:
        return ""
    if ages[0] == ages[-1]:
        return f", published {age(ages[0])} ago"
    return f", published {age(ages[0])} to {age(ages[-1])} ago"


def _statistics(status: ClusterStatus, style: Style, wide: bool) -> list[str]:
    instances = status.instances
    if not instances:
        return ["Statistics: none published (app processes publish every few seconds)"]
    total = status.statistics
    lines = [f"Statistics: {plural(len(instances), 'instance')}{_published(status)}", ""]
    shown = instances if wide else ()
    header = ["COUNTER", "TOTAL", *(figures.instance for figures in shown)]
    rows = [
        [name, str(count), *(str(f.counters.get(name, 0)) for f in shown)]
        for name, count in total.counters.items()
    ]
    lines += _table(header, rows, style, set()) if rows else [
        "No counters yet: no request has used a session since these processes started."
    ]
    timing_rows = []
    for name, timing in total.timings.items():
        fmt = size if name.endswith("size") else duration
        summary = timing.summary()
        timing_rows.append([name, str(timing.count),
                            *(fmt(summary[p]) for p in ("p50", "p95", "p99"))])
    if timing_rows:
        lines += ["", *_table(["TIMING", "COUNT", "P50", "P95", "P99"], timing_rows, style, set())]
    return lines


def _redundancy(status: ClusterStatus, style: Style, wide: bool) -> list[str]:
    """``--redundancy``: sessions with two good copies, with one, stale copies, bytes."""
    if status.redundancy is None:
        return []
    return ["Redundancy:", *_table(redundancy.HEADER, redundancy.rows(status, size), style, set())]


Section = Callable[[ClusterStatus, Style, bool], list[str]]
SECTIONS: tuple[Section, ...] = (_nodes, _sessions, _redundancy, _warnings, _statistics)


def render_text(status: ClusterStatus, style: Style, wide: bool = False) -> str:
    """The text report: node table, sessions, redundancy, warnings, statistics; blank lines
    between."""
    lines: list[str] = []
    for section in SECTIONS:
        found = section(status, style, wide)
        if found:
            lines += ["", *found] if lines else found
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
        parser.add_argument("--wide", action="store_true",
                            help="Every column: addresses, versions, per-instance statistics.")
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
            status = collect_status(
                count=not options["no_count"], check_copies=bool(options["redundancy"])
            )
            if options["watch"] is not None and coloured and not options["json"]:
                self.stdout.write("\x1b[H\x1b[2J", ending="")  # clear the terminal
            output = (
                render_json(status) if options["json"]
                else render_text(status, style, options["wide"])
            )
            self.stdout.write(output, ending="")
            if options["watch"] is None:
                return status
            time.sleep(options["watch"])
