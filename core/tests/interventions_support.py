"""Shared helpers for the interventions, prompts and plots tests.

Tiny models of one type per family (cached for the session: the methods never
change a model), a forward-pass counter on the HuggingFace module itself, and
plain-PyTorch references built with forward hooks, independent of nnsight.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, Optional

import pytest
import torch

from nnrosetta import Capability, StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny, claimed_tiny_types

#: One model type per family; gemma2 has final-logit soft-capping, mixtral routes tokens to experts.
FAMILY_TYPES = ("llama", "gpt2", "gemma2", "mixtral")


def family_params() -> list:
    """``FAMILY_TYPES`` as pytest params, each skipped (with the reason) when its plugin is not installed."""
    claimed = set(claimed_tiny_types())
    return [
        pytest.param(t, marks=pytest.mark.skipif(t not in claimed, reason=f"no installed plugin claims {t!r}"))
        for t in FAMILY_TYPES
    ]


@functools.lru_cache(maxsize=None)
def tiny_model(model_type: str, **load_kwargs) -> StandardizedTransformer:
    """A tiny seeded model of ``model_type`` (shared by every test in the session)."""
    hf_model, tokenizer = build_tiny(model_type)
    return StandardizedTransformer(hf_model, tokenizer=tokenizer, **load_kwargs)


def is_moe(model: StandardizedTransformer) -> bool:
    """Mixture-of-experts kernels group tokens by expert, so a bigger batch changes rounding."""
    return Capability.MOE in model.adapter.capabilities


@contextlib.contextmanager
def count_forwards(model: StandardizedTransformer) -> Iterator[list]:
    """Count calls of the HuggingFace model's forward inside the block."""
    calls: list = []
    handle = model._module.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


def encode(model: StandardizedTransformer, prompts: list[str]) -> dict:
    encoding = model.tokenizer(prompts, return_tensors="pt", padding=True)
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}


def _first(value):
    return value[0] if isinstance(value, tuple) else value


def _first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_first_input(args: tuple, kwargs: dict, value: torch.Tensor) -> tuple[tuple, dict]:
    if args:
        return (value, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": value}


def hf_forward(
    model: StandardizedTransformer,
    encoding: dict,
    capture: Optional[dict[str, torch.nn.Module]] = None,
    replace: Optional[tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]] = None,
    capture_inputs: Optional[dict[str, torch.nn.Module]] = None,
    replace_inputs: Optional[dict[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]] = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Plain HuggingFace forward (nnsight not involved): logits, captured module values.

    ``capture`` names modules whose (first) output is recorded; ``replace`` is a module and
    a function giving its new (first) output. ``capture_inputs`` records modules' first
    input (positional or ``hidden_states=``) under ``"<name>.input"``; ``replace_inputs``
    maps modules to functions giving their new first input. Position ids are derived from
    the mask, as nnsight does for a left-padded batch. ``model`` may be any wrapper with
    ``_module`` (nnsight's) or the HuggingFace model itself.
    """
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in (capture_inputs or {}).items():
        handles.append(module.register_forward_pre_hook(
            lambda m, args, kwargs, name=name: captured.__setitem__(f"{name}.input", _first_input(args, kwargs)),
            with_kwargs=True,
        ))
    for module, function in (replace_inputs or {}).items():
        handles.append(module.register_forward_pre_hook(
            lambda m, args, kwargs, function=function: _with_first_input(args, kwargs, function(_first_input(args, kwargs))),
            with_kwargs=True,
        ))
    for name, module in (capture or {}).items():
        handles.append(module.register_forward_hook(lambda m, a, out, name=name: captured.__setitem__(name, _first(out))))
    if replace is not None:
        module, function = replace

        def swap(m, args, out):
            new = function(_first(out))
            return (new, *out[1:]) if isinstance(out, tuple) else new

        handles.append(module.register_forward_hook(swap))
    mask = encoding["attention_mask"]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    hf_model = getattr(model, "_module", model)
    try:
        with torch.no_grad():
            logits = hf_model(**encoding, position_ids=position_ids).logits
    finally:
        for handle in handles:
            handle.remove()
    return logits, captured


def standard_module(model: StandardizedTransformer, component: str, layer: int) -> torch.nn.Module:
    """The torch module behind ``<component>_output[layer]``."""
    envoy = {"layers": model.layers[layer], "attentions": model.attentions[layer], "mlps": model.mlps[layer]}[component]
    return envoy._module
