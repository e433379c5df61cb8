"""``python -m chaos`` (``make chaos``): run fault schedules against django_msm and its peers.

Each (schedule, engine) pair gets a fresh cluster; the table is printed as the runs finish and
``docs/chaos.md`` is written at the end. Exit status 1 when django_msm lost a session or an update
or resurrected a session (the evidence is kept), 2 when the harness itself failed.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from pathlib import Path

from . import report, runner
from .about import ABOUT
from .engines import ENGINES, for_nodes
from .load import LoadParams
from .schedule import DEFAULT_SCHEDULES, Schedule, ScheduleError, load, shipped

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE_ROOT = ROOT / ".cache" / "chaos"
DOCS = ROOT / "docs" / "chaos.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", action="append", metavar="NAME|PATH",
                        help=f"repeatable; default: {', '.join(DEFAULT_SCHEDULES)}; 'all' runs "
                             f"every shipped one ({', '.join(shipped())})")
    parser.add_argument("--engines", default="",
                        help=f"comma-separated subset of {', '.join(ENGINES)}")
    parser.add_argument("--users", type=int, default=LoadParams.users)
    parser.add_argument("--max-requests", type=int, default=LoadParams.max_requests)
    parser.add_argument("--seed", type=int, default=LoadParams.seed)
    parser.add_argument("--output", type=Path, default=DOCS,
                        help="markdown report (default docs/chaos.md); '-' writes none")
    parser.add_argument("--keep", action="store_true", help="keep every run's logs")
    parser.add_argument("--evidence", type=Path, default=EVIDENCE_ROOT,
                        help="where each run's evidence goes (default .cache/chaos)")
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.engines.split(","))) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    return args


def _schedules(names: list[str] | None) -> list[Schedule]:
    wanted = names or list(DEFAULT_SCHEDULES)
    if wanted == ["all"]:
        wanted = shipped()
    return [load(name) for name in wanted]


def _command(argv: list[str] | None) -> str:
    given = os.environ.get("CHAOS_COMMAND")
    if given and not (argv if argv is not None else sys.argv[1:]):
        return given
    return " ".join(["python -m chaos", *(argv if argv is not None else sys.argv[1:])])


def _plan(schedules: list[Schedule], engines: str) -> list[tuple[Schedule, str]]:
    wanted = tuple(filter(None, engines.split(",")))
    plan = []
    for schedule in schedules:
        keys = [e.key for e in for_nodes(schedule.nodes, schedule.engines)]
        plan += [(schedule, key) for key in keys if not wanted or key in wanted]
    return plan


def _run_all(
    plan: list[tuple[Schedule, str]], params: LoadParams, evidence_root: Path, keep: bool
) -> list[runner.RunResult] | None:
    """Run the plan in order, printing each row as it comes; None if the harness failed."""
    results = []
    for number, (schedule, key) in enumerate(plan, 1):
        evidence = evidence_root / f"{schedule.name}--{key}"
        print(f"[{number}/{len(plan)}] {schedule.name} × {ENGINES[key].label} ...", flush=True)
        try:
            result = runner.run(ENGINES[key], schedule, params, evidence, keep=keep)
        except Exception:  # the harness failed, not an engine: no table from a partial run
            logging.getLogger("chaos").exception("run failed; its logs are in %s", evidence)
            return None
        results.append(result)
        cells = zip(report.COLUMNS[1:], report.row("", result.outcome)[1:], strict=True)
        print("    " + " | ".join(f"{column} {value}" for column, value in cells)
              + f" ({result.seconds:.0f} s)", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan = _plan(_schedules(args.schedule), args.engines)
    except ScheduleError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    params = LoadParams(users=args.users, max_requests=args.max_requests, seed=args.seed)
    evidence = args.evidence / datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    began = time.monotonic()
    results = _run_all(plan, params, evidence, args.keep)
    if results is None:
        return 2
    total = time.monotonic() - began
    print("\n" + "\n".join(report.sections(results)))
    print(report.verdict(results))
    print(f"{len(plan)} runs in {total:.0f} s; evidence in {evidence}")
    if str(args.output) not in ("-", "", "."):  # "-" or '' : print only
        args.output.write_text(report.markdown(results, _command(argv), params, total, ABOUT))
        print(f"wrote {args.output}")
    return 1 if any(result.failed for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
