"""`pip install .` installs the package and only the package (testproject/, tests/ stay out)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_django_msm(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         str(ROOT), "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("django_msm-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"django_msm"}
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"django_msm/py.typed", "django_msm/management/commands/msm_status.py",
            "django_msm/management/commands/msm_sessions.py",
            "django_msm/templates/django_msm/sessions.html"} <= names
    # Every module of the source tree, the layers' folders included (core/ and ops/ had no
    # __init__.py and were left out of the wheel), and the admin page's templates.
    source = {
        str(path.relative_to(ROOT)) for path in (ROOT / "django_msm").rglob("*")
        if path.suffix in (".py", ".html") and "__pycache__" not in path.parts
    }
    assert source - names == set()
    assert "django_msm/templates/django_msm/cluster.html" in names
