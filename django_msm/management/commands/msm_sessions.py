"""``manage.py msm_sessions USERNAME [--end-all] [--json]``: a user's sessions, or log them out.

Session keys are credentials: the listing shows the first characters of each and the node that
holds it, never a whole key.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_msm import user_sessions
from django_msm.core.keys import parse

COLUMNS = ("SESSION", "CREATED", "LAST SEEN", "IP", "USER AGENT")
SHOWN_KEY_CHARS = 6


def masked(key: str) -> str:
    """``abcdef...-n2.web1``: enough to tell sessions apart and see their node, not to use."""
    sid = parse(key)
    if sid is None:
        return "?"
    tail = "" if sid.node_id is None else f"-{sid.node_id}"
    return f"{sid.base[:SHOWN_KEY_CHARS]}...{tail}" + ("" if sid.route is None else f".{sid.route}")


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _row(session: user_sessions.UserSession) -> dict[str, Any]:
    return {
        "session": masked(session.session_key), "created": _time(session.created),
        "last_seen": _time(session.last_seen), "ip": session.ip,
        "user_agent": session.user_agent,
    }


class Command(BaseCommand):
    help = "List a user's sessions on the nodes, or end them all (log out everywhere)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the user, by the user model's USERNAME_FIELD")
        parser.add_argument("--end-all", action="store_true",
                            help="end every session of the user (log out everywhere)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        model = get_user_model()
        try:
            user = model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist as exc:
            raise CommandError(f"no user {username!r}", returncode=2) from exc
        if options["end_all"]:
            self._end_all(user, username, options["json"])
        else:
            self._list(user, username, options["json"])

    def _end_all(self, user: Any, username: str, as_json: bool) -> None:
        ended = user_sessions.end_all(user)
        left = len(user_sessions.list_for(user))  # sessions no node holding them answered for
        if as_json:
            self.stdout.write(json.dumps({"user": username, "ended": ended, "remaining": left}))
            return
        self.stdout.write(self.style.SUCCESS(f"Ended {ended} session(s) of {username}."))
        if left:
            self.stdout.write(self.style.ERROR(f"{left} session(s) could not be reached; "
                                               "run again once their nodes answer."))

    def _list(self, user: Any, username: str, as_json: bool) -> None:
        rows = [_row(session) for session in user_sessions.list_for(user)]
        if as_json:
            self.stdout.write(json.dumps({"user": username, "sessions": rows}))
            return
        if not rows:
            self.stdout.write(f"{username} has no sessions.")
            return
        cells = [[r["session"], r["created"], r["last_seen"], r["ip"] or "-",
                  r["user_agent"] or "-"] for r in rows]
        lines = [list(COLUMNS), *cells]
        widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
        for line in lines:  # the user agent, last, is not padded
            padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
            self.stdout.write("  ".join([*padded, line[-1]]))
