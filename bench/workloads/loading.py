"""Workload 7: what loading costs, and what the validation at load adds.

From a model object: nnsight's bare wrap vs `StandardizedTransformer` with the
check off and on. From a saved folder: HuggingFace ``from_pretrained`` (model and
tokenizer) vs nnsight's wrap with dispatch vs `StandardizedTransformer`.
Validation alone is timed against the plain forward of its own dummy input.
Target: validation costs at most two such forwards. Every "check on" variant is cold:
the per-process validation cache is cleared before it (outside the timed region).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import torch
from nnsight import TransformersModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from nnrosetta import StandardizedTransformer
from nnrosetta.validation import DUMMY_SEQUENCE_LENGTH, clear_validation_cache, validate

from ..context import Models, Settings, wrap_nnrosetta, wrap_raw_nnsight
from ..report import Row
from ..shapes import save_model
from ..timing import TARGET_REPEATS, compare

NAME_OBJECT = "7 load from a model object"
NAME_FOLDER = "7 load from a saved folder"
NAME_VALIDATION = "7 validation at load"
TARGET_VALIDATION_FORWARDS = 2.0


def _load_options(settings: Settings) -> dict:
    options: dict = {"dtype": settings.dtype}
    if settings.device != "cpu":
        options["device_map"] = settings.device
    return options


def from_object_rows(models: Models, settings: Settings) -> list[Row]:
    pristine = models.hf
    fresh = lambda: copy.deepcopy(pristine)  # noqa: E731 - a never-wrapped copy, made untimed

    def fresh_and_cold():
        clear_validation_cache()
        return fresh()
    timings = compare(
        {
            "nnsight": wrap_raw_nnsight,
            "off": lambda model: wrap_nnrosetta(model, check=False),
            "on": lambda model: wrap_nnrosetta(model, check=True),
        },
        settings.repeats,
        settings.warmup,
        settings.device,
        setup={"nnsight": fresh, "off": fresh, "on": fresh_and_cold},
    )
    name = models.shape.name
    added = timings.median("on") - timings.median("off")
    return [
        Row(NAME_OBJECT, name, "nnsight TransformersModel(model) (bare wrap)", timings.median("nnsight")),
        Row(NAME_OBJECT, name, "StandardizedTransformer(model, check=False)", timings.median("off"),
            reference="vs bare wrap", ratio=timings.ratio("off", "nnsight")),
        Row(NAME_OBJECT, name, "StandardizedTransformer(model) (check on)", timings.median("on"),
            reference="vs bare wrap", ratio=timings.ratio("on", "nnsight"),
            note=f"check adds {added * 1000:.1f} ms (difference of medians)"),
    ]


def from_folder_rows(models: Models, settings: Settings) -> list[Row]:
    options = _load_options(settings)
    with tempfile.TemporaryDirectory(prefix="nnrosetta-bench-") as tmp:
        folder = str(save_model(models.hf, Path(tmp)))

        def hugging_face() -> tuple:
            return AutoModelForCausalLM.from_pretrained(folder, **options), AutoTokenizer.from_pretrained(folder)

        def bare_nnsight() -> TransformersModel:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return TransformersModel(folder, task="text-generation", dispatch=True,
                                         tokenizer=AutoTokenizer.from_pretrained(folder), **options)

        timings = compare(
            {
                "hf": hugging_face,
                "nnsight": bare_nnsight,
                "off": lambda: StandardizedTransformer(folder, check=False, **options),
                "on": lambda _cleared: StandardizedTransformer(folder, **options),
            },
            settings.repeats,
            settings.warmup,
            settings.device,
            setup={"on": clear_validation_cache},
        )
    name = models.shape.name
    return [
        Row(NAME_FOLDER, name, "HF from_pretrained(folder) + tokenizer", timings.median("hf")),
        Row(NAME_FOLDER, name, "nnsight TransformersModel(folder, dispatch=True)", timings.median("nnsight"),
            reference="vs HF", ratio=timings.ratio("nnsight", "hf")),
        Row(NAME_FOLDER, name, "StandardizedTransformer(folder, check=False)", timings.median("off"),
            reference="vs HF", ratio=timings.ratio("off", "hf")),
        Row(NAME_FOLDER, name, "StandardizedTransformer(folder) (check on)", timings.median("on"),
            reference="vs HF", ratio=timings.ratio("on", "hf"),
            note=f"{timings.ratio('on', 'nnsight'):.3f}× vs nnsight's wrap"),
    ]


def validation_rows(models: Models, settings: Settings) -> list[Row]:
    model = models.nnrosetta
    dummy = (torch.arange(DUMMY_SEQUENCE_LENGTH).unsqueeze(0) % model.vocab_size).to(settings.device)

    def dummy_forward() -> torch.Tensor:
        with torch.no_grad():
            return models.hf(dummy).logits

    timings = compare(
        {"forward": dummy_forward, "validate": lambda _cleared: validate(model)},
        max(settings.repeats, TARGET_REPEATS),
        settings.warmup,
        settings.device,
        setup={"validate": clear_validation_cache},
    )
    name = models.shape.name
    return [
        Row(NAME_VALIDATION, name, f"plain HF forward of the dummy (1, {DUMMY_SEQUENCE_LENGTH}) input",
            timings.median("forward")),
        Row(NAME_VALIDATION, name, "nnrosetta.validation.validate(model), cold", timings.median("validate"),
            reference="dummy forwards", ratio=timings.ratio("validate", "forward"),
            target=models.target(TARGET_VALIDATION_FORWARDS)),
    ]


def run(models: Models, settings: Settings) -> list[Row]:
    return from_object_rows(models, settings) + from_folder_rows(models, settings) + validation_rows(models, settings)
