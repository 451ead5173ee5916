"""The GPU checks of large-model support, in one short script: ``python bench/gpu_check.py``.

The test suite runs on CPUs only; what needs CUDA is checked here, bit for bit,
with the same method list as ``core/tests/test_remote_local.py`` (every accessor
read and written, steering, logit lens, patchscope, activation and attribution
patching, run_with_cache, run_prompts), on tiny llama, gpt2 and mixtral models:

1. bf16 on ``cuda:0``: the logits equal plain HuggingFace's;
2. bf16 on ``cuda:0`` through nnsight's remote simulation (``remote="local"``)
   equals the local run;
3. bf16 split by ``device_map``: over several CUDA devices when there are two or
   more (``device_map="auto"`` with ``max_memory`` per device), else ``cuda:0``
   plus disk offload (the offloaded layers run on ``cuda:0``), equals the model
   in one piece on ``cuda:0``.

Without CUDA it prints that no GPU is present and exits 0. Exit 1 when a check fails.
``--on-cpu`` runs the same checks with the CPU standing in for ``cuda:0`` (bf16, CPU
plus disk offload): a rehearsal of the script itself on a machine without a GPU.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("llama", "gpt2", "mixtral")
#: Share of the model's bytes the first device may hold when it is split.
FIRST_DEVICE_SHARE = 0.6


def _methods() -> tuple[dict, Callable[..., None]]:
    """The method list and the bitwise comparison of the remote test module (the same checks)."""
    sys.path.insert(0, str(ROOT / "core" / "tests"))
    from test_remote_local import METHODS, _equal

    return METHODS, _equal


def _size(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _same_logits_as_huggingface(model: Any, hf_model: Any, device: str) -> None:
    encoding = model.tokenizer(["The capital of France is", "Hi"], return_tensors="pt", padding=True)
    encoding = {name: value.to(device) for name, value in encoding.items()}
    position_ids = (encoding["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = hf_model(**encoding, position_ids=position_ids).logits
        with model.trace(encoding):
            logits = model.logits.save()
    assert torch.equal(logits, expected), "bf16 logits differ from plain HuggingFace"


def _same_results(first: Any, second: Any, remote: Any, methods: dict, equal: Callable) -> None:
    for name, (run, _) in methods.items():
        equal(run(first, False), run(second, remote), name)


def _split_map(devices: int, size: int, device: str) -> dict:
    if devices >= 2:
        share = max(int(size / devices * 1.2), 1)
        return {"device_map": "auto", "max_memory": {index: share for index in range(devices)}}
    if device == "cpu":
        return {"device_map": "auto", "max_memory": {"cpu": int(size * FIRST_DEVICE_SHARE)}}
    return {"device_map": "auto", "max_memory": {0: int(size * FIRST_DEVICE_SHARE), "cpu": 0}}


def check_family(model_type: str, methods: dict, equal: Callable, folder: Path, device: str) -> list[tuple[str, str]]:
    """(check, "ok" or the failure) for one family."""
    from nnrosetta import StandardizedTransformer
    from nnrosetta.tiny import build_tiny, save_tiny

    results: list[tuple[str, str]] = []

    def attempt(name: str, check: Callable[[], None]) -> None:
        start = time.monotonic()
        try:
            check()
            results.append((name, f"ok ({time.monotonic() - start:.1f}s)"))
        except Exception as error:  # one failing check must not hide the others
            line = traceback.format_exception_only(type(error), error)[-1].strip()
            results.append((name, f"FAILED: {line}"))

    hf_model, tokenizer = build_tiny(model_type)
    hf_model = hf_model.to(device=device, dtype=torch.bfloat16)
    whole = StandardizedTransformer(hf_model, tokenizer=tokenizer, enable_attention_probs=True)
    attempt("bf16 logits = HuggingFace", lambda: _same_logits_as_huggingface(whole, hf_model, device))
    attempt("bf16 remote='local' = local", lambda: _same_results(whole, whole, "local", methods, equal))

    path = str(save_tiny(model_type, folder / model_type))
    devices = torch.cuda.device_count() if device != "cpu" else 1
    placement = _split_map(devices, _size(hf_model), device)
    label = f"over {devices} CUDA devices" if devices >= 2 else f"{device} + disk offload"

    def split() -> None:
        loaded = dict(dtype=torch.bfloat16, enable_attention_probs=True)
        one_piece = StandardizedTransformer(path, device_map={"": 0 if device != "cpu" else "cpu"}, **loaded)
        parts = StandardizedTransformer(path, offload_folder=str(folder / f"{model_type}-offload"), **placement, **loaded)
        used = set(map(str, parts._module.hf_device_map.values()))
        assert len(used) >= 2, f"device_map put everything on {used}"
        _same_results(one_piece, parts, False, methods, equal)

    attempt(f"bf16 device_map {label} = one piece", split)
    return results


def main(arguments: list[str]) -> int:
    device = "cpu" if "--on-cpu" in arguments else "cuda:0"
    if device != "cpu" and not torch.cuda.is_available():
        print("gpu_check: no GPU present (torch.cuda.is_available() is False); nothing to check. The CPU forms "
              "run in the test suite: core/tests/test_remote_local.py and core/tests/test_device_map.py.")
        return 0
    methods, equal = _methods()
    if device == "cpu":
        print(f"gpu_check --on-cpu: the CPU stands in for cuda:0; torch {torch.__version__}")
    else:
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        print(f"gpu_check: {torch.cuda.device_count()} CUDA device(s): {names}; torch {torch.__version__}")
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        for model_type in FAMILIES:
            for check, outcome in check_family(model_type, methods, equal, Path(folder), device):
                failed += not outcome.startswith("ok")
                print(f"  {model_type:8} {check:42} {outcome}")
    print("gpu_check: all checks passed" if not failed else f"gpu_check: {failed} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
