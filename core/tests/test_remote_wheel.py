"""remote="local" works with nnrosetta installed from its wheels into site-packages, not only editable.

nnsight registers for by-value pickling only the modules it finds outside
site-packages (an editable checkout is one of them); an installed nnrosetta is
shipped by value only because nnrosetta registers itself and its plugins. This
builds the wheels (`make dist`), installs them into a fresh virtual environment
(as `test_dist` does) with pytest, and runs `test_remote_local.py` there from a
folder outside the repository: every method, bitwise, on a simulated server that
cannot import nnrosetta, its plugins or pluggy, under pytest (whose assertion
rewriting loads the installed nnrosetta through its own loader).

Slow (a few minutes, mostly installing), so it runs only when ``NNROSETTA_TEST_DIST=1``:
``NNROSETTA_TEST_DIST=1 .venv/bin/pytest -q core/tests/test_remote_wheel.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("NNROSETTA_TEST_DIST") == "1"

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="slow (a few minutes): NNROSETTA_TEST_DIST=1 pytest core/tests/test_remote_wheel.py"
)


def _run(command: list, cwd: Path, timeout: int = 900) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NNROSETTA_TEST_DIST")}
    done = subprocess.run(list(map(str, command)), cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def workdir():
    """A folder of its own: pytest's tmp_path may be removed by other pytest runs during these minutes."""
    with tempfile.TemporaryDirectory(prefix="nnrosetta-remote-wheel-") as folder:
        yield Path(folder)


def test_remote_local_runs_every_method_with_nnrosetta_installed_from_wheels(workdir) -> None:
    tmp_path = workdir
    dist = tmp_path / "dist"
    _run(["make", "-s", "dist", f"DIST={dist}"], cwd=ROOT)
    wheels = sorted(dist.glob("*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "torch==2.13.0"], cwd=tmp_path)
    _run([python, "-m", "pip", "install", "-q", *wheels, "pytest>=8"], cwd=tmp_path)

    where = _run([python, "-c", "import nnrosetta; print(nnrosetta.__file__)"], cwd=tmp_path).strip()
    assert "site-packages" in where and Path(where).is_relative_to(venv), where

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ROOT / "core" / "tests" / "test_remote_local.py", run)
    output = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_remote_local.py"], cwd=run)
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 28 and "failed" not in output, output[-3000:]
