"""Attention probabilities: ``model.attention_probabilities[i]``, read and written inside a trace.

Only eager attention materialises the post-softmax probabilities (sdpa and flash
kernels never form them), so they are served when the model runs eager attention:
``StandardizedTransformer(..., enable_attention_probs=True)`` loads it that way.
Where in the family's attention forward the probabilities live is the plugin's
knowledge (`AttentionSpec`); this module walks there through nnsight's ``.source``
and reads or replaces the value the family's own code then multiplies the values by.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch

from .accessors import module_at, normalize_index
from .errors import AttentionImplementationError, CapabilityError, ShapeError
from .source_points import Reached, reach
from .specs import AttentionSpec

if TYPE_CHECKING:
    from .adapter import Adapter
    from .model import StandardizedTransformer

EAGER = "eager"
PRINT_SOURCE_TOKENS = 3


def prepare_eager_loading(adapter: "Adapter", model: Any, load_kwargs: dict, enable: bool) -> None:
    """Before loading with ``enable_attention_probs=True``: ask for eager attention, refuse a conflict.

    A model object already loaded is switched to eager in place (transformers'
    ``set_attn_implementation``); a hub id or folder is loaded with
    ``attn_implementation="eager"``.
    """
    if not enable:
        return
    if adapter.attention is None:
        raise CapabilityError(
            f"enable_attention_probs=True, but adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}) "
            f"declares no `attention` spec, so it cannot serve attention probabilities. Drop the flag, or "
            f"use a plugin whose adapter lists 'attention_probabilities' in `nnrosetta adapters`."
        )
    requested = load_kwargs.get("attn_implementation")
    if requested not in (None, EAGER):
        raise AttentionImplementationError(
            f"enable_attention_probs=True needs attn_implementation='eager' (only eager attention forms "
            f"the probabilities), but attn_implementation={requested!r} was also passed. Drop one of the "
            f"two: keep {requested!r} and read `model.attention_patterns(i)` (recomputed, read-only), or "
            f"drop attn_implementation to edit probabilities."
        )
    if isinstance(model, torch.nn.Module):
        if any(value != EAGER for value in implementations(model.config)):
            switch_implementation(model, EAGER)
    else:
        load_kwargs["attn_implementation"] = EAGER


def _decoder_configs(config: Any) -> list[Any]:
    """The config and, for a composite model, its text config: the two that may name the decoder's attention."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return [config] if text is config else [config, text]


def implementations(config: Any) -> tuple[Optional[str], ...]:
    """``_attn_implementation`` of the config and of its text config (when it has its own).

    A composite model's language model runs what its text config says, which may
    differ from the top-level config's (a vision encoder with eager attention only).
    """
    return tuple(getattr(part, "_attn_implementation", None) for part in _decoder_configs(config))


def decoder_implementation(config: Any) -> Optional[str]:
    """The attention implementation the language model runs: its text config's, else the config's own."""
    return implementations(config)[-1]


def switch_implementation(hf_model: Any, implementation: str, restoring: bool = False) -> None:
    """Switch a loaded model's attention implementation (transformers' ``set_attn_implementation``).

    Some families refuse the switch after loading although their attention reads
    ``config._attn_implementation`` on every call; eager is always available, so a
    refused switch to eager (or back to what the model ran before) sets it directly,
    on the text config too.
    """
    try:
        hf_model.set_attn_implementation(implementation)
    except (ValueError, NotImplementedError, AttributeError):
        if implementation != EAGER and not restoring:
            raise
    if implementation == EAGER or restoring:
        for part in _decoder_configs(hf_model.config):
            if part._attn_implementation != implementation:
                part._attn_implementation = implementation


def _restore(hf_model: Any, previous: tuple[Optional[str], ...]) -> None:
    """Put back what the config and its text config said before a switch."""
    switch_implementation(hf_model, previous[-1], restoring=True)
    for part, value in zip(_decoder_configs(hf_model.config), previous):
        if part._attn_implementation != value:
            part._attn_implementation = value


@contextlib.contextmanager
def attention_implementation(model: "StandardizedTransformer", implementation: str) -> Iterator[None]:
    """Run the block with the model's attention switched to ``implementation``, then switch back.

    The weights are untouched, so this compares implementations on the same model
    (eager probabilities against sdpa patterns, say) without loading it twice. The
    switch happens when the top-level config or the text config (the language
    model's, in a composite model) says another implementation.
    """
    hf_model = model._module
    previous = implementations(hf_model.config)
    if any(value != implementation for value in previous):
        switch_implementation(hf_model, implementation)
    try:
        yield
    finally:
        if implementations(hf_model.config) != previous:
            _restore(hf_model, previous)


def attention_module(model: "StandardizedTransformer", layer: int, spec: Any) -> Any:
    """The envoy whose forward holds a spec's points: ``spec.module`` below the layer, else its ``self_attn``."""
    envoy = model.layers[layer]
    if getattr(spec, "module", None):
        return module_at(envoy, spec.module)
    return envoy.self_attn


def sink_logits(model: "StandardizedTransformer", layer: int) -> Optional[torch.Tensor]:
    """Layer ``layer``'s per-head sink logits (num_heads,) as `AttentionSpec.sinks` declares them.

    None where the adapter declares no sinks, or where the layer's attribute is None
    (a layer without sinks). A declared path the module lacks is a wrong declaration.
    """
    spec = model.adapter.attention
    if spec is None or spec.sinks is None:
        return None
    index = normalize_index(layer, model.num_layers, "layer", "num_layers")
    owner: Any = attention_module(model, index, spec)._module
    for part in spec.sinks.split("."):
        if not hasattr(owner, part):
            raise CapabilityError(
                f"{describe_adapter(model.adapter)} declares attention sinks at `{spec.sinks}` of layer {index}'s "
                f"attention ({type(attention_module(model, index, spec)._module).__name__}), but it has no "
                f"attribute `{part}` there. Fix `AttentionSpec.sinks` (a parameter path from the attention "
                f"module), or drop it where the family has no sinks."
            )
        owner = getattr(owner, part)
    if owner is not None and not isinstance(owner, torch.Tensor):
        raise CapabilityError(
            f"{describe_adapter(model.adapter)} declares attention sinks at `{spec.sinks}`, but layer {index}'s "
            f"value there is a {type(owner).__name__}, not a tensor of per-head logits. Fix `AttentionSpec.sinks`."
        )
    return owner


def describe_adapter(adapter: "Adapter") -> str:
    return f"adapter {adapter.name!r} ({adapter.plugin or '<explicit>'})"


def declared_spec(model: "StandardizedTransformer", field: str, what: str, serves: str, instead: str) -> Any:
    """The adapter's ``field`` spec, or a `CapabilityError` saying why ``serves`` is not available.

    ``what`` names the member the user touched; ``instead`` is the standard accessor to use meanwhile.
    """
    adapter = model.adapter
    spec = getattr(adapter, field)
    model_type = getattr(model.config, "model_type", None)
    if spec is None:
        raise CapabilityError(
            f"`{what}` needs {serves}, but model type {model_type!r} is served by "
            f"{describe_adapter(adapter)}, which declares no `{field}` spec. Use {instead}, or a plugin "
            f"listing '{field if field != 'attention' else 'attention_probabilities'}' in `nnrosetta adapters`."
        )
    reason = spec.refuse(model.config) if spec.refuse is not None else None
    if reason:
        raise CapabilityError(
            f"`{what}`: {describe_adapter(adapter)} cannot serve {serves} for this {model_type!r} config: {reason}"
        )
    return spec


def attention_spec(model: "StandardizedTransformer", what: str) -> AttentionSpec:
    """The adapter's attention spec, or an error saying why the probabilities cannot be served."""
    spec = declared_spec(model, "attention", what, "attention probabilities", "`model.attentions_output[i]`")
    implementation = decoder_implementation(model.config)
    if implementation != EAGER:
        top = model.config._attn_implementation
        runs = (
            f"the language model runs attn_implementation={implementation!r} (its text config) while the "
            f"top-level config says {top!r}" if top != implementation else f"this model runs "
            f"attn_implementation={implementation!r}"
        )
        raise CapabilityError(
            f"`{what}` needs eager attention (only eager forms the probabilities), but {runs}. Load it with "
            f"StandardizedTransformer(..., enable_attention_probs=True), or read the read-only "
            f"`model.attention_patterns(i)`, recomputed from the rotated queries and keys."
        )
    return spec


class AttentionProbabilities:
    """``model.attention_probabilities``: layer i's post-softmax probabilities, (batch, heads, q, k)."""

    def __init__(self, model: "StandardizedTransformer") -> None:
        self._model = model

    def __len__(self) -> int:
        return self._model.num_layers

    def _point(self, index: int) -> Reached:
        spec = attention_spec(self._model, f"attention_probabilities[{index}]")
        layer = normalize_index(index, len(self), "layer", "num_layers")
        return reach(attention_module(self._model, layer, spec), spec.probabilities, self._model.adapter,
                     "attention.probabilities")

    def _batch_heads(self, index: int) -> int:
        return self._model._layer_shape(normalize_index(index, len(self), "layer", "num_layers"))[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        value = self._point(index).value
        if self._model.adapter.attention.flat_heads:
            return value.reshape(self._batch_heads(index), -1, *value.shape[-2:])
        return value

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        point = self._point(index)
        raw = point.value
        current = self[index] if self._model.adapter.attention.flat_heads else raw
        if not isinstance(value, torch.Tensor) or value.shape != current.shape:
            seen = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ShapeError(
                f"attention_probabilities[{index}] has shape {tuple(current.shape)} (batch, heads, q, k) but "
                f"the value written is {seen}; write a tensor of the same shape (edit a clone of the value read)."
            )
        point.write(value.reshape(raw.shape) if value.shape != raw.shape else value)

    def print_source(self, index: int = 0, file: Any = None) -> str:
        """Print (and return) the code around the hooked point, so a user sees what an edit replaces.

        Call it outside a trace: it runs one tiny forward to reach the code inside
        the attention function the family calls.
        """
        spec = attention_spec(self._model, f"attention_probabilities.print_source({index})")
        layer = normalize_index(index, len(self), "layer", "num_layers")
        attention = attention_module(self._model, layer, spec)
        shown: list[str] = []
        device = next(self._model._module.parameters()).device
        input_ids = torch.zeros((1, PRINT_SOURCE_TOKENS), dtype=torch.long, device=device)
        with torch.no_grad(), self._model.trace(input_ids):
            shown.append(repr(reach(attention, spec.probabilities, self._model.adapter, "attention.probabilities").operation))
        text = "\n\n".join(shown)
        print(text, file=file)
        return text


class AttentionInterface:
    """The attention-probabilities part of `StandardizedTransformer`, served from the adapter's `AttentionSpec`."""

    @property
    def attention_probabilities(self) -> AttentionProbabilities:
        """Layer i's post-softmax attention probabilities (batch, heads, q, k); readable and writable.

        Needs eager attention: load with ``enable_attention_probs=True``.
        """
        return AttentionProbabilities(self)
