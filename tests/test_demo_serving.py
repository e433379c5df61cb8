"""`make demo`'s serving phase as a visitor uses it (issue 16): the banner's commands work and a
failure caused by hand is narrated live, with no session key printed (demo/check.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def test_the_serving_phase_narrates_a_killed_node_and_leaks_no_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo.check"], cwd=ROOT, capture_output=True, text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "quarantined" in result.stdout
