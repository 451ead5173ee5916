"""Installing any third-party plugin keeps the project's own tests green.

A throwaway distribution (real dist-info metadata on the path) claims a model type
the project does not; the project's tests of the registry, the bad-input errors and
the CLI then run in a fresh pytest process that discovers it like any installed
plugin. They must not assume which types are unclaimed, nor that only the project's
plugins are installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plugin_fixtures import adapter_plugin, make_distribution

ROOT = Path(__file__).resolve().parents[2]


def _unclaimed_type() -> str:
    """A transformers causal-LM type no installed plugin claims (a made-up one once every type is claimed)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from nnrosetta import default_registry

    claimed = default_registry().claims()
    return next((t for t in sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) if t not in claimed), "thirdparty_arch")


def test_the_projects_tests_pass_with_a_third_party_plugin_installed(tmp_path: Path) -> None:
    THROWAWAY_TYPE = _unclaimed_type()
    site = make_distribution(
        tmp_path / "site", "nnrosetta-thirdparty", "1.0", {"thirdparty": adapter_plugin("thirdparty", (THROWAWAY_TYPE,))}
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    files = ["core/tests/test_registry.py", "core/tests/test_bad_input.py", "conformance/tests/test_cli.py"]
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *files],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    check = subprocess.run(
        [sys.executable, "-c", f"from nnrosetta import default_registry as r; print(r().resolve({THROWAWAY_TYPE!r}).plugin)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert check.stdout.strip() == "nnrosetta-thirdparty 1.0", check.stdout + check.stderr
