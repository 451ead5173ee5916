"""remote=True fails at once with one line, before any request leaves, when it cannot work.

A model loaded from a local folder has no hub id a server could load; without an API key
or a reachable server the error says which, in seconds (no hang). The host used here is a
closed port on the loopback address, so no traffic leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from nnrosetta import StandardizedTransformer
from nnrosetta.remote import RemoteExecutionError
from nnrosetta_conformance.tiny import save_tiny

HUB_MODEL_SCRIPT = """
import time
from nnrosetta import StandardizedTransformer
from nnrosetta.remote import RemoteExecutionError
model = StandardizedTransformer("nnrosetta-test/tiny-llama")
start = time.monotonic()
try:
    with model.trace("Hi", remote=True):
        model.logits.save()
except RemoteExecutionError as error:
    print(f"{time.monotonic() - start:.2f}|{error}")
"""


def test_remote_true_on_a_folder_model_fails_at_once_with_one_line(tmp_path):
    model = StandardizedTransformer(str(save_tiny("llama", tmp_path / "tiny-llama")))
    start = time.monotonic()
    with pytest.raises(RemoteExecutionError) as error:
        with model.trace("Hi", remote=True):
            model.logits.save()
    assert time.monotonic() - start < 2
    message = str(error.value)
    assert "\n" not in message and "folder" in message and "hub id" in message


def _hub_cache(tmp_path) -> dict:
    """An offline hub cache holding ``nnrosetta-test/tiny-llama``, as a download would leave it."""
    revision = "0" * 40
    repo = tmp_path / "hub" / "models--nnrosetta-test--tiny-llama"
    save_tiny("llama", repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NDIF_", "HF_"))}
    return {**env, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "NNROSETTA_REMOTE_CONNECT_TIMEOUT": "3"}


def _remote_error(env: dict) -> tuple[float, str]:
    run = subprocess.run([sys.executable, "-c", HUB_MODEL_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stdout.splitlines() if "|" in line]
    assert len(lines) == 1, run.stdout + run.stderr
    seconds, message = lines[0].split("|", 1)
    return float(seconds), message


def test_remote_true_without_a_key_or_a_reachable_server_fails_fast_with_one_line(tmp_path):
    env = {**_hub_cache(tmp_path), "NDIF_HOST": "http://127.0.0.1:9"}
    seconds, message = _remote_error(env)
    assert seconds < 2 and "API key" in message and "NDIF_API_KEY" in message
    seconds, message = _remote_error({**env, "NDIF_API_KEY": "not-a-key"})
    assert seconds < 5 and "cannot be reached" in message and "127.0.0.1:9" in message
