"""The wheels `make dist` builds install into a fresh environment and work there.

A plain ``python -m venv`` (no system site-packages, so the editable install of
the project cannot leak in) gets ``torch==2.13.0`` first (a CPU build this
machine holds locally), then the wheels by file, with their other dependencies
from the package index (nnsight is not on any local index); then the installed
``nnrosetta`` command runs from outside the repository.

Slow (a minute or two, mostly installing torch and the dependencies), so it runs
only when ``NNROSETTA_TEST_DIST=1``: ``make test-dist``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("NNROSETTA_TEST_DIST") == "1"

pytestmark = pytest.mark.skipif(not ENABLED, reason="slow (a minute or two): run `make test-dist`")


def _run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NNROSETTA_TEST_DIST")}
    environment["COLUMNS"] = "80"
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _distributions() -> dict[str, Path]:
    """Distribution name -> source folder: the root, then every plugin."""
    folders = [ROOT] + sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
    return {tomllib.loads((f / "pyproject.toml").read_text())["project"]["name"]: f for f in folders}


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode()


@pytest.fixture(scope="module")
def distributions() -> dict[str, Path]:
    return _distributions()


@pytest.fixture(scope="module")
def wheels(distributions, tmp_path_factory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    _run(["make", "-s", "dist", f"DIST={dist}"], cwd=ROOT)
    built = {}
    for wheel in dist.glob("*.whl"):
        name = next(line.split(": ", 1)[1] for line in _metadata(wheel).splitlines() if line.startswith("Name: "))
        built[name] = wheel
    return built


def test_make_dist_builds_one_licensed_wheel_per_distribution(distributions, wheels) -> None:
    assert sorted(wheels) == sorted(distributions)
    core_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    major, minor = core_version.split(".")[:2]
    for name, wheel in wheels.items():
        metadata = _metadata(wheel)
        assert "License-Expression: Apache-2.0" in metadata, name
        if name != "nnrosetta":
            assert f"Requires-Dist: nnrosetta<{major}.{int(minor) + 1},>={major}.{minor}" in metadata, name
    with zipfile.ZipFile(wheels["nnrosetta"]) as archive:
        modules = [n for n in archive.namelist() if n.endswith(".py")]
        assert "nnrosetta-" + core_version + ".dist-info/licenses/LICENSE" in archive.namelist()
    stale = [m for m in modules if not ((ROOT / "core" / m).exists() or (ROOT / "conformance" / m).exists())]
    assert modules and stale == [], f"modules in the wheel that the sources do not have: {stale}"


def test_the_wheels_work_in_a_fresh_virtual_environment(wheels, tmp_path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout=120)
    python, command = venv / "bin" / "python", venv / "bin" / "nnrosetta"
    isolated = _run([str(python), "-c", "import importlib.util as u; print(u.find_spec('nnrosetta'))"], cwd=tmp_path)
    assert isolated.stdout.strip() == "None", "the fresh environment already sees nnrosetta"
    _run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], cwd=tmp_path)
    _run([str(python), "-m", "pip", "install", "-q", *map(str, wheels.values())], cwd=tmp_path)

    where = _run([str(python), "-c", "import nnrosetta; print(nnrosetta.__file__)"], cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    version = _run([str(command), "--version"], cwd=tmp_path).stdout.splitlines()
    assert version[0] == f"nnrosetta {tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']}"
    for name in wheels:
        if name != "nnrosetta":
            assert any(line.startswith(f"  {name} ") for line in version), f"{name} missing from --version: {version}"
    adapters = _run([str(command), "adapters"], cwd=tmp_path).stdout
    assert "nnrosetta-llama" in adapters and "broken plugin" not in adapters, adapters
    check = _run([str(command), "check", "tiny:llama", "--checks", "fidelity"], cwd=tmp_path).stdout
    assert "fidelity" in check and "passed" in check and "all conform: 1 of 1 model(s)" in check, check
