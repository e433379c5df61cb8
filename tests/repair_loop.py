"""A separate repair process for the race tests: passes back to back until a stop file appears.

    python -m tests.repair_loop NODES STOPFILE

Runs with the test settings (same SECRET_KEY, so it reads the copies the test process writes),
``DJANGO_MSM`` pointed at NODES, at no rate limit; prints the summed figures as JSON at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

DEADLINE = 60.0  # a safety bound: the test stops it long before


def main(nodes: str, stop: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.DJANGO_MSM = {"MEMCACHED_NODES": nodes, "OPERATION_TIMEOUT": 0.5,
                           "RETRY_TIMEOUT": 0.2, "AUTO_REPAIR": False}
    from django_msm.ops.repair import RepairPass
    from django_msm.runtime import get_cluster

    cluster = get_cluster()
    totals = {"passes": 0, "restored": 0, "replaced": 0, "removed": 0, "raced": 0, "undone": 0}
    deadline = time.monotonic() + DEADLINE
    while not stop.exists() and time.monotonic() < deadline:
        report = RepairPass(cluster, rate=0).run()
        totals["passes"] += 1
        for name in totals.keys() - {"passes"}:
            totals[name] += getattr(report, name)
    print(json.dumps(totals))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
