"""A short status for the tour, from ``manage.py msm_status --json``: per node whether it answers
and how many primary and backup copies it holds, then the totals. The full table is for
operators (``manage.py msm_status``); the tour needs four columns.
"""

from __future__ import annotations

import json
from typing import Any


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _answers(node: dict[str, Any]) -> str:
    """Whether a fresh probe reached the node, wherever the schema keeps it."""
    probe = node.get("probe")
    if isinstance(probe, dict):
        probe = probe.get("up", probe.get("state"))
    value = node.get("up", probe)
    if isinstance(value, str):
        return "yes" if value == "up" else "no"
    return "?" if value is None else ("yes" if value else "no")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _totals(status: dict[str, Any]) -> str:
    sessions, backups = status.get("sessions"), status.get("backup_copies")
    if sessions is None:
        return "sessions not counted"
    text = f"{_plural(sessions, 'session')} in all"
    if backups is not None:
        text += f", {backups} with a backup copy"
    return text if status.get("complete", True) else f"{text} (a node was not counted)"


def status_lines(stdout: str, stderr: str, returncode: int) -> list[str]:
    """The lines to print for one ``msm_status --json`` run."""
    try:
        status = json.loads(stdout)
    except ValueError:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return [f"msm_status --json failed (exit {returncode}): {tail}"]
    lines = ["$ manage.py msm_status --json, in short:",
             f"  {'node':<6}{'answers':<9}{'sessions':<10}backups"]
    for node in status.get("nodes", []):
        lines.append(f"  {node.get('id', '?'):<6}{_answers(node):<9}"
                     f"{_cell(node.get('sessions')):<10}{_cell(node.get('backups'))}")
    lines.append(f"  {_totals(status)}")
    return lines
