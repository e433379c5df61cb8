"""The supported matrix is stated in five places (scripts/pins/, setup.cfg's classifiers, tox.ini,
the GitHub workflow, the Makefile's suites) that must agree; scripts/find-python must skip the
interpreters that only look usable (pyenv's shims, a too old Python); and installing the package
must print no setuptools warning block (the first thing `make` showed a new user)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "scripts" / "pins"
FIND_PYTHON = ROOT / "scripts" / "find-python"


def _pinned() -> dict[str, str]:
    """Factor (``dj61``) -> Django version (``6.1``), from the pin files' Django lower bounds."""
    versions = {}
    for pins in sorted(PINS.glob("dj*.txt")):
        (bound,) = re.findall(r"^Django>=(\d+\.\d+)", pins.read_text(), flags=re.MULTILINE)
        versions[pins.stem] = bound
    return versions


def _tox_envlist() -> list[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return [env.strip() for env in config["tox"]["envlist"].split(",")]


def _workflow_envs() -> list[str]:
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    return re.findall(r"toxenv: ([\w-]+)", text)


def test_every_pinned_django_is_declared_and_run_everywhere() -> None:
    pinned = _pinned()
    assert {"dj52", "dj60", "dj61"} <= set(pinned)
    assert pinned["dj61"] == "6.1"
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(ROOT / "setup.cfg")
    classifiers = setup["metadata"]["classifiers"]
    envlist = _tox_envlist()
    for factor, version in pinned.items():
        assert f"Framework :: Django :: {version}" in classifiers, factor
        assert any(env.endswith(f"-{factor}") for env in envlist), factor
    assert _workflow_envs() == envlist


def test_make_test_runs_suites_that_have_pins() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (suites,) = re.findall(r"^SUITES \?= (.+)$", makefile, flags=re.MULTILINE)
    assert suites.split() == ["dj52", "dj61"]
    for suite in suites.split():
        assert (PINS / f"{suite}.txt").is_file()
        assert f"$(call suite_rules,{suite}," in makefile


def _run_find_python(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """find-python with a pyenv root and PATH made up of tmp_path's fakes (and the basic tools)."""
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "pyenv"),
           "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    return subprocess.run(["bash", str(FIND_PYTHON), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def _fake(path: Path, target: str | None = None) -> Path:
    """A link to a real interpreter, or (no target) a shim that fails as pyenv's do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if target:
        path.symlink_to(target)
    else:
        path.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
        path.chmod(0o755)
    return path


def test_find_python_skips_shims_and_picks_the_version_asked(tmp_path: Path) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    real = _fake(tmp_path / "pyenv" / "versions" / f"{here}.0" / "bin" / "python3", sys.executable)
    _fake(tmp_path / "pyenv" / "versions" / "3.99.0" / "bin" / "python3")
    _fake(tmp_path / "bin" / "python3.13")
    found = _run_find_python(tmp_path, here)
    assert (found.returncode, found.stdout.strip()) == (0, str(real))
    assert _run_find_python(tmp_path, f"={here}").stdout.strip() == str(real)


def test_find_python_says_what_to_install_when_none_fits(tmp_path: Path) -> None:
    _fake(tmp_path / "pyenv" / "versions" / "3.11.0" / "bin" / "python3", sys.executable)
    _fake(tmp_path / "bin" / "python3.13")
    missing = _run_find_python(tmp_path, "3.98")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "no Python >= 3.98" in missing.stderr
    assert "pyenv install" in missing.stderr and "PYTHON_DJ61=" in missing.stderr


@pytest.mark.integration
def test_editable_install_prints_no_setuptools_warning(tmp_path: Path) -> None:
    # --ignore-installed: never uninstall the running venv's own editable install.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed",
         "--prefix", str(tmp_path / "prefix"), "--editable", str(ROOT)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    output = result.stdout + result.stderr
    assert not re.search(r"\w+Warning:", output), output  # BuildBackendWarning and its kin
    assert list((tmp_path / "prefix").rglob("__editable__.django_msm-*.pth"))
