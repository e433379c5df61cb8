"""The chaos harness (``chaos/``): its definitions on small controlled inputs, then one short
end-to-end run of ``python -m chaos`` on a real cluster, where django_msm must lose nothing and
Django's cache engine must be seen losing sessions (so the harness can tell the two apart)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos import __main__ as cli
from chaos import schedule as schedules
from chaos.accounting import Sample, SessionRecord, Verdict, account, latencies, percentile, phase
from chaos.http import Reply, parse, render
from chaos.load import Load, LoadParams, User
from chaos.runner import Applied, fault_window
from chaos.schedule import Schedule, ScheduleError, Step

WINDOW = (5.0, 10.0)


# -- schedules -------------------------------------------------------------------------------------
def test_every_shipped_schedule_loads_and_the_defaults_are_shipped() -> None:
    names = schedules.shipped()
    assert set(schedules.DEFAULT_SCHEDULES) <= set(names)
    for name in names:
        loaded = schedules.load(name)
        assert loaded.name == name
        assert any(step.is_fault for step in loaded.steps) or name == "baseline"


def test_kill_node_schedule_reads_as_written() -> None:
    kill = schedules.load("kill-node")
    assert kill.nodes == "memcached"
    assert kill.steps == (Step(6.0, "kill", "node:n1"), Step(12.0, "restart", "node:n1"))
    assert kill.fault_window == (6.0, 12.0)
    assert kill.in_fault(6.0) and kill.in_fault(11.9) and not kill.in_fault(12.0)
    assert not kill.in_fault(5.9)


def _raw(*steps: dict[str, object], duration: float = 20.0) -> dict[str, object]:
    return {"name": "t", "description": "d", "nodes": "memcached", "duration": duration,
            "steps": list(steps)}


@pytest.mark.parametrize(("steps", "message"), [
    ([{"at": 1, "action": "explode", "target": "node:n1"}], "unknown action"),
    ([{"at": 1, "action": "kill", "target": "node:n9"}], "unknown target"),
    ([{"at": 1, "action": "kill", "target": "node:n1"}], "never mended"),
    ([{"at": 1, "action": "pause", "target": "node:n1"},
      {"at": 2, "action": "restart", "target": "node:n1"}], "mends nothing"),
    ([{"at": 1, "action": "kill", "target": "app:app1"},
      {"at": 2, "action": "kill", "target": "app:app1"}], "broken twice"),
    ([{"at": 1, "action": "kill", "target": "node:n1"},
      {"at": 18, "action": "restart", "target": "node:n1"}], "outside"),
])
def test_invalid_schedules_are_refused_with_the_reason(
    steps: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        schedules.parse(_raw(*steps))


def test_a_schedule_file_given_by_path_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_raw({"at": 1, "action": "pause", "target": "node:n2"},
                                    {"at": 3, "action": "resume", "target": "node:n2"})))
    loaded = schedules.load(str(path))
    assert [step.action for step in loaded.steps] == ["pause", "resume"]
    with pytest.raises(ScheduleError, match="no schedule"):
        schedules.load("no-such-schedule")


# -- the HTTP client's parsing ---------------------------------------------------------------------
def test_reply_parsing_tells_a_new_cookie_from_a_deleted_one() -> None:
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    new = parse((head + "Set-Cookie: sessionid=abc-n2; Path=/; HttpOnly\r\n\r\n"
                 '{"user": "s1.1", "ops": 2}').encode())
    assert (new.status, new.cookie, new.body) == (200, "abc-n2", {"user": "s1.1", "ops": 2})
    gone = parse((head + 'Set-Cookie: sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; '
                  "Max-Age=0; Path=/\r\nSet-Cookie: csrftoken=x\r\n\r\n{}").encode())
    assert gone.cookie == ""
    untouched = parse(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<html>")
    assert (untouched.status, untouched.cookie, untouched.body) == (502, None, None)
    assert parse(b"garbage").status == 0


def test_requests_carry_the_cookie_and_the_form() -> None:
    data = render("POST", "127.0.0.1:80", "/api/cart", "k-n1", {"id": "u7"})
    assert data.startswith(b"POST /api/cart HTTP/1.0\r\n")
    assert b"Cookie: sessionid=k-n1\r\n" in data and data.endswith(b"\r\n\r\nid=u7")
    assert b"Cookie" not in render("GET", "h", "/api/read", None, None)


# -- what a user makes of replies ------------------------------------------------------------------
def _user() -> tuple[User, SessionRecord]:
    plan = Schedule("t", "d", "memcached", 10.0, ())
    user = User(Load("http://127.0.0.1:1", plan, LoadParams(users=1)), 0)
    record = SessionRecord("s0.1", ["k1-n1"], 0.0)
    user.record, user.cookie = record, "k1-n1"
    return user, record


def test_an_update_counts_only_when_the_reply_names_the_user() -> None:
    user, record = _user()
    user.settle(record, Reply(200, "k2-n2", {"user": "s0.1"}), "u1")
    user.settle(record, Reply(500), "u2")
    user.settle(record, Reply(0, error="TimeoutError"), "u3")
    user.settle(record, Reply(200, None, {"user": "someone else"}), "u4")
    assert record.acked == {"u1"} and record.crossed == 1
    assert record.keys == ["k1-n1", "k2-n2"] and user.cookie == "k2-n2"
    assert record.kicked_at is None and user.record is record


@pytest.mark.parametrize("reply", [Reply(200, "", {"user": None}), Reply(200, None, {"user": None}),
                                   Reply(500, "")])
def test_a_reply_saying_logged_out_ends_the_session_for_the_user(reply: Reply) -> None:
    user, record = _user()
    user.settle(record, reply, "u1")
    assert record.kicked_at is not None and not record.acked
    assert user.record is None and user.cookie is None  # a new login starts from an empty jar


# -- accounting ------------------------------------------------------------------------------------
def test_percentiles_are_nearest_rank_and_phases_follow_the_window() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0
    assert [phase(t, WINDOW) for t in (4.9, 5.0, 9.9, 10.0)] == [
        "before", "during", "during", "after"]
    assert phase(7.0, None) == "after"  # no fault: a healthy cluster throughout
    samples = [Sample(6.0, 0.010, 200), Sample(7.0, 0.030, 503), Sample(8.0, 2.0, 0),
               Sample(11.0, 0.005, 200)]
    assert latencies(samples, WINDOW) == {
        "before": (None, None), "during": (0.010, 0.030), "after": (0.005, 0.005)}


def _records() -> tuple[list[SessionRecord], dict[str, Verdict]]:
    intact = SessionRecord("a", ["ka"], 0.0, acked={"1", "2"})
    dropped_update = SessionRecord("b", ["kb"], 0.0, acked={"3", "4"}, kicked_at=6.0)
    lost = SessionRecord("c", ["kc"], 0.0, acked={"5"}, kicked_at=7.0)
    revoked = SessionRecord("d", ["kd", "kd2"], 0.0, logout_at=6.5)
    revived = SessionRecord("e", ["ke"], 0.0, logout_at=12.0)
    unsure = SessionRecord("f", ["kf"], 0.0, logout_tried=True)
    verdicts = {
        "a": Verdict(seen=True, found=frozenset({"1", "2", "x"})),
        "b": Verdict(seen=True, found=frozenset({"3"})),
        "c": Verdict(), "d": Verdict(), "e": Verdict(resurrected=True), "f": Verdict(),
    }
    return [intact, dropped_update, lost, revoked, revived, unsure], verdicts


def test_account_counts_each_column_by_its_definition() -> None:
    records, verdicts = _records()
    samples = [Sample(1.0, 0.01, 200), Sample(6.0, 0.5, 502), Sample(7.0, 0.2, 400),
               Sample(8.0, 10.0, 0)]
    outcome = account(records, verdicts, samples, WINDOW)
    assert (outcome.sessions, outcome.lost, outcome.logged_out) == (6, 1, 2)
    assert (outcome.updates, outcome.updates_lost) == (5, 1)  # c's update counts under lost
    assert (outcome.logouts, outcome.logouts_in_fault, outcome.resurrected) == (2, 1, 1)
    assert (outcome.requests, outcome.errors_4xx, outcome.errors_5xx, outcome.no_answer) == (
        4, 1, 1, 1)
    assert not outcome.msm_clean


def test_a_clean_run_is_clean_and_every_record_needs_a_verdict() -> None:
    records, verdicts = _records()
    kept = records[:1]
    assert account(kept, verdicts, [], None).msm_clean
    with pytest.raises(KeyError):
        account(records, {"a": verdicts["a"]}, [], None)


def test_the_actual_fault_window_runs_from_first_fault_to_last_mend_done() -> None:
    applied = (Applied(Step(6, "kill", "node:n1"), 6.01, 6.02),
               Applied(Step(8, "kill", "app:app1"), 8.0, 8.1),
               Applied(Step(12, "restart", "node:n1"), 12.0, 12.3),
               Applied(Step(13, "restart", "app:app1"), 13.0, 14.5))
    assert fault_window(applied) == (6.01, 14.5)
    assert fault_window(()) is None


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_short_run_on_a_real_cluster(tmp_path: Path) -> None:
    plan = tmp_path / "short-kill.toml"
    plan.write_text(
        'name = "short-kill"\ndescription = "n1 killed at 2 s, back empty at 4.5 s"\n'
        'nodes = "memcached"\nduration = 9.0\n'
        '[[steps]]\nat = 2.0\naction = "kill"\ntarget = "node:n1"\n'
        '[[steps]]\nat = 4.5\naction = "restart"\ntarget = "node:n1"\n'
    )
    output = tmp_path / "chaos.md"
    code = cli.main(["--schedule", str(plan), "--engines", "msm,cache", "--users", "30",
                     "--max-requests", "3000", "--output", str(output),
                     "--evidence", str(tmp_path / "evidence")])
    text = output.read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "engine" not in line}
    msm, cache = rows["**django_msm (locking)**"], rows["Django cache (PyMemcacheCache)"]
    assert code == 0, text
    assert int(msm[0]) >= 25 and int(msm[7]) > 100  # sessions, requests
    assert (msm[1], msm[4], msm[6]) == ("0", "0", "0")  # lost, updates lost, resurrected
    assert int(cache[1]) > 0  # Django's cache engine lost the sessions on n1
