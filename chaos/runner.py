"""One chaos run: a fresh cluster for one engine, the load and the schedule's faults at once, the
final check, the count. Its evidence (what every user saw, the final verdicts, the fault times,
and the app and balancer logs when django_msm lost anything or ``keep`` is set) stays in
``.cache/chaos/<stamp>/<schedule>--<engine>/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .accounting import Outcome, SessionRecord, Verdict, account
from .cluster import ChaosCluster
from .engines import Engine
from .load import Load, LoadParams
from .schedule import Schedule, Step
from .verify import verify

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """A step as it happened: when it began and when it was done (seconds into the load)."""

    step: Step
    started: float
    finished: float


@dataclass(frozen=True)
class RunResult:
    schedule: Schedule
    engine: Engine
    outcome: Outcome
    applied: tuple[Applied, ...]
    seconds: float
    evidence: Path

    @property
    def failed(self) -> bool:
        """django_msm lost something: an engine bug, to be reported with the evidence."""
        return self.engine.is_msm and not self.outcome.msm_clean


def fault_window(applied: tuple[Applied, ...]) -> tuple[float, float] | None:
    """Actual (start, end): the first fault began, the last mend was done."""
    faults = [a.started for a in applied if a.step.is_fault]
    mends = [a.finished for a in applied if not a.step.is_fault]
    return (min(faults), max(mends)) if faults and mends else None


async def _inject(cluster: ChaosCluster, load: Load, steps: tuple[Step, ...]) -> list[Applied]:
    loop = asyncio.get_running_loop()
    applied = []
    for step in steps:
        await asyncio.sleep(max(0.0, step.at - load.now()))
        started = load.now()
        await loop.run_in_executor(None, cluster.apply, step)
        applied.append(Applied(step, started, load.now()))
        logger.info("%s %s at %.1fs (done at %.1fs)", step.action, step.target, started,
                    load.now())
    return applied


async def _drive(
    cluster: ChaosCluster, schedule: Schedule, params: LoadParams
) -> tuple[Load, list[Applied], dict[str, Verdict]]:
    load = Load(cluster.url, schedule, params)
    running = asyncio.ensure_future(load.run())
    await asyncio.sleep(0)  # the load's clock starts first
    applied = await _inject(cluster, load, schedule.steps)
    await running
    verdicts = await verify(load.records, cluster.live_app_urls(), timeout=params.timeout)
    return load, applied, verdicts


def run(
    engine: Engine, schedule: Schedule, params: LoadParams, evidence: Path, keep: bool = False
) -> RunResult:
    """Run ``schedule`` against ``engine`` on a cluster of its own and count what was lost."""
    began = time.monotonic()
    with ChaosCluster(engine, evidence, schedule.node_count) as cluster:
        load, applied, verdicts = asyncio.run(_drive(cluster, schedule, params))
    window = fault_window(tuple(applied))
    outcome = account(load.records, verdicts, load.samples, window)
    result = RunResult(schedule, engine, outcome, tuple(applied), time.monotonic() - began,
                       evidence)
    _write_evidence(result, load.records, verdicts, keep or result.failed)
    return result


def _record(record: SessionRecord, verdict: Verdict) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data["acked"] = sorted(record.acked)
    data["verdict"] = {"seen": verdict.seen, "resurrected": verdict.resurrected,
                       "missing": sorted(record.acked - verdict.found) if verdict.seen else None}
    return data


def _write_evidence(
    result: RunResult, records: list[SessionRecord], verdicts: dict[str, Verdict], logs: bool
) -> None:
    summary = {
        "schedule": result.schedule.name, "engine": result.engine.key,
        "outcome": dataclasses.asdict(result.outcome), "seconds": round(result.seconds, 1),
        "applied": [dataclasses.asdict(a) for a in result.applied],
    }
    (result.evidence / "result.json").write_text(json.dumps(summary, indent=1))
    if logs:
        details = [_record(r, verdicts[r.user]) for r in records]
        (result.evidence / "sessions.json").write_text(json.dumps(details, indent=1))
        return
    for path in result.evidence.iterdir():  # the logs and the SQLite file: kept only if needed
        if path.name != "result.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
