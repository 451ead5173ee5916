"""`StandardizedTransformer`: a HuggingFace causal LM under nnsight with standard names.

The HuggingFace model runs unchanged (so logits are bit-identical); nnsight's
``rename`` aliases give its modules the standard names, and the accessors give
every family's inputs and outputs one (batch, seq, hidden) shape.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import torch
from nnsight import TransformersModel
from nnsight.intervention.envoy import Envoy

from .accessors import SublayerModules, normalize_index
from .adapter import Adapter
from .attention import AttentionInterface, prepare_eager_loading
from .config_sources import language_configs
from .errors import (
    AccessorAssignmentError,
    CapabilityError,
    LayerIndexError,
    RefusedConfigError,
    RenamingError,
    ShapeError,
    UnsupportedArchitectureError,
)
from .heads import HeadsInterface
from .loading import TINY_PREFIX, class_names, load_error, load_tokenizer, read_config, reuse_config, tiny_target
from .layer_kinds import LayerKindsInterface
from .moe import MixtureOfExpertsInterface
from .registry import Registry, default_registry
from .remote import RemoteInterface
from .trace_checks import check_call
from .trace_guard import GuardedSession, GuardedTracer, TracedActivations, install_lock, standard_errors, trace_lock
from .validation import validate
from .write_checks import check_hidden_argument, check_steering_vector, check_written

Indices = Union[int, Sequence[int], slice, None]


class LayerListEnvoy(Envoy):
    """The envoy of the `layers` container: refuses item assignment with a hint."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            normalize_index(index, len(self._module), "layer", "num_layers")
        return super().__getitem__(index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise AccessorAssignmentError(
            f"`model.layers[{index}] = ...` would replace a whole layer module. Inside a trace, "
            f"assign its activation instead: `model.layers_output[{index}] = tensor` (or "
            f"`layers_input`); to skip it, use `model.skip_layer({index})`."
        )


class StandardizedTransformer(
    RemoteInterface, LayerKindsInterface, AttentionInterface, HeadsInterface, MixtureOfExpertsInterface,
    TransformersModel,
):
    """A causal language model with one interface whatever its family.

    Args:
        model: a hub id, a local folder written by ``save_pretrained``, or a loaded
            ``PreTrainedModel`` (pass its ``tokenizer=`` unless it was loaded from a folder).
        adapter: an `Adapter` or adapter name, overriding resolution by model type.
        tokenizer: the tokenizer; loaded from the model's folder when omitted.
        check: run the fast structure and shape validation at load (one tiny forward).
        enable_attention_probs: load with eager attention so `attention_probabilities[i]`
            can be read and written; a conflicting ``attn_implementation`` is refused.
        registry: the plugin registry to resolve adapters in (default: the process-wide one).
        **kwargs: passed on to nnsight and HuggingFace (``device_map``, ``dtype``,
            ``attn_implementation``, ``dispatch``, ...).
    """

    def __init__(
        self,
        model: Any,
        *,
        adapter: Union[Adapter, str, None] = None,
        tokenizer: Any = None,
        check: bool = True,
        enable_attention_probs: bool = False,
        registry: Optional[Registry] = None,
        **kwargs: Any,
    ) -> None:
        install_lock(self)
        from_path = isinstance(model, (str, os.PathLike)) and not str(model).startswith(TINY_PREFIX)
        registry = registry or default_registry()
        model, tokenizer = tiny_target(model, tokenizer, adapter, registry)
        config = read_config(model, kwargs)
        resolved = registry.resolve(getattr(config, "model_type", None), class_names(model, config), adapter, config)
        refusal = resolved.refusal(config)
        if refusal:
            raise RefusedConfigError(
                f"adapter {resolved.name!r} ({resolved.plugin or '<explicit>'}) cannot serve this "
                f"{resolved.model_type or getattr(config, 'model_type', '?')!r} model: {refusal}"
            )
        if tokenizer is None:
            tokenizer = load_tokenizer(model, kwargs)
        kwargs.setdefault("task", "text-generation")
        if not isinstance(model, torch.nn.Module):
            kwargs.setdefault("dispatch", True)
        reuse_config(model, config, kwargs)
        rename = {**resolved.nnsight_rename(), **(kwargs.pop("rename", None) or {})}
        envoys = kwargs.pop("envoys", None)
        if envoys:  # a user's map; nnsight matches it against every module's spellings as it builds
            kwargs["envoys"] = envoys
        object.__setattr__(self, "adapter", resolved)
        prepare_eager_loading(resolved, model, kwargs, enable_attention_probs)
        try:
            super().__init__(model, tokenizer=tokenizer, rename=rename, **kwargs)
        except Exception as error:
            translated = load_error(error, model, kwargs)
            if translated is not None:
                raise translated from None
            if not (isinstance(error, ValueError) and "`rename` alias" in str(error)):
                raise
            raise RenamingError(
                f"adapter {resolved.name!r} ({resolved.plugin or '<explicit>'}) cannot be applied to this "
                f"{resolved.model_type!r} model: {error} Fix the adapter's rename map (its entries: "
                f"{dict(resolved.rename)})."
            ) from None
        self._adopt_layer_list_envoy()
        self._record_layer_shapes()
        self._record_moe_block_shapes()
        if check:
            validate(self, persistent=from_path)

    # -- the standard accessors, in forward order -------------------------------

    layers_input = TracedActivations(None, "input")
    attentions_input = TracedActivations("self_attn", "input")
    attentions_output = TracedActivations("self_attn", "output")
    mlps_input = TracedActivations("mlp", "input")
    mlps_output = TracedActivations("mlp", "output")
    layers_output = TracedActivations(None, "output")
    attentions = SublayerModules("self_attn")
    mlps = SublayerModules("mlp")

    # -- running: one trace at a time per model, inputs checked first -------------

    def trace(self, *inputs: Any, **kwargs: Any) -> Any:
        """nnsight's trace, with its inputs and keywords checked and the model locked while it runs."""
        generating = getattr(kwargs.get("fn"), "__name__", None) == "generate"
        check_call(self, inputs, kwargs, generating)
        kwargs.setdefault("tracer_cls", GuardedTracer)
        return super().trace(*inputs, **kwargs)

    def session(self, *args: Any, **kwargs: Any) -> Any:
        """nnsight's session, holding the model's lock for the whole session."""
        kwargs.setdefault("tracer_cls", functools.partial(GuardedSession, model=self))
        return super().session(*args, **kwargs)

    def interleave(self, *args: Any, **kwargs: Any) -> Any:
        # Direct calls (`model.generate(...)` outside a `with`) run here without a tracer.
        with trace_lock(self):
            return super().interleave(*args, **kwargs)

    def _batch(self, invokes: list, fn: Any) -> tuple:
        """nnsight's batching, without the position_ids it adds where the model counts its own."""
        args, kwargs = super()._batch(invokes, fn)
        if self.adapter.positions_from_inputs and "position_ids" in kwargs and not _gives_position_ids(invokes):
            kwargs = {key: value for key, value in kwargs.items() if key != "position_ids"}
        return args, kwargs

    def __getattr__(self, name: str) -> Any:
        adapter = self.__dict__.get("adapter")
        if adapter is not None and name in adapter.absent:
            raise CapabilityError(
                f"`{name}` is absent from model type {adapter.model_type!r} (adapter {adapter.name!r}, "
                f"{adapter.plugin or '<explicit>'}): {adapter.absent[name]}."
            )
        return super().__getattr__(name)

    def _adopt_layer_list_envoy(self) -> None:
        """Give the `layers` envoy its refusing ``__setitem__`` once the tree is built.

        Passing ``envoys={"model.layers": ...}`` to nnsight would do the same, but it
        matches the key against every spelling of every module's path as it builds
        the tree (a quarter of the wrap on a 30-layer model); the `layers` alias
        names the one envoy that needs it. A class a user's ``envoys=`` chose is kept.
        """
        layers = self.__dict__.get("layers")  # the alias (or a native child) nnsight bound
        if type(layers) is Envoy:  # absent when the rename does not fit: validation says so
            layers.__class__ = LayerListEnvoy

    def _record_layer_shapes(self) -> None:
        """Keep each layer's (batch, seq), seen on entry, for sublayers that flatten tokens.

        Once a layer has run, nnsight can no longer hand out its input, so a plain
        forward pre-hook notes the shape on every call (installed once per module).
        """
        if self.__dict__.get("_shapes_hooked_module") is self._module:
            return
        try:
            count = self.num_layers
        except RenamingError:
            return  # a rename that does not fit: validation (or the first accessor) says so
        shapes: dict[int, tuple[int, int]] = {}
        outputs: dict[int, tuple[type, int, bool]] = {}
        object.__setattr__(self, "_layer_shapes", shapes)
        object.__setattr__(self, "_layer_outputs", outputs)
        object.__setattr__(self, "_shapes_hooked_module", self._module)
        for index in range(count):
            self.layers[index]._module.register_forward_pre_hook(
                functools.partial(_note_layer_shape, shapes, index), with_kwargs=True
            )
            self.layers[index]._module.register_forward_hook(functools.partial(_note_layer_output, outputs, index))

    def _layer_shape(self, layer: int) -> tuple[int, int]:
        return self._layer_shapes[layer]

    # -- sizes ---------------------------------------------------------------

    def _config_value(self, key: Any) -> Any:
        """A config value by key (``"a.b"`` reads a nested config), or ``key(config)`` for a callable key."""
        if not key:
            return None
        if callable(key):
            return key(self.config)
        # Multimodal configs keep the language model's sizes in their text config.
        for config in language_configs(self.config):
            value = config
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
                if value is None:
                    break
            if value is not None:
                return value
        return None

    @property
    def num_layers(self) -> int:
        """Number of decoder layers."""
        try:
            layers = self.layers
        except AttributeError:
            adapter = self.adapter
            raise RenamingError(
                f"adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}) maps no module to `layers` on this "
                f"{type(self._module).__name__} (its rename map: {dict(adapter.rename)}); the model's top-level "
                f"children are {', '.join(n for n, _ in self._module.named_children())}. Use the adapter of this "
                f"model's family (drop adapter=), or load with check=True to see what does not fit."
            ) from None
        return len(layers)

    def _per_layer_size(self, name: str) -> Optional[int]:
        """With `ConfigKeys.per_layer`, the size every layer shares; an error naming each layer's where they differ."""
        keys = self.adapter.config_keys
        if keys.per_layer is None:
            return None
        sizes = {layer: keys.layer_sizes(self.config, layer)[name] for layer in range(self.num_layers)}
        if len(set(sizes.values())) > 1:
            raise CapabilityError(
                f"`{name}` differs between the layers of this {self.adapter.model_type!r} model (adapter "
                f"{self.adapter.name!r}, {self.adapter.plugin or '<explicit>'}, reads it per layer from "
                f"config.{keys.per_layer}): {sizes}. Read one layer's with "
                f"model.adapter.config_keys.layer_sizes(model.config, layer)."
            )
        return next(iter(sizes.values()))

    def layer_sizes(self, layer: int) -> dict[str, int]:
        """``num_heads``, ``num_kv_heads`` and ``head_dim`` of one layer (models whose layers differ declare
        `ConfigKeys.per_layer`; elsewhere every layer has the model's)."""
        index = normalize_index(layer, self.num_layers, "layer", "num_layers")
        keys = self.adapter.config_keys
        if keys.per_layer is not None:
            return keys.layer_sizes(self.config, index)
        return {"num_heads": self.num_heads, "num_kv_heads": self.num_kv_heads, "head_dim": self.head_dim}

    @property
    def num_heads(self) -> int:
        """Number of attention (query) heads."""
        shared = self._per_layer_size("num_heads")
        return shared if shared is not None else int(self._config_value(self.adapter.config_keys.num_heads))

    @property
    def num_kv_heads(self) -> int:
        """Number of key/value heads (equal to `num_heads` without grouped-query attention)."""
        shared = self._per_layer_size("num_kv_heads")
        if shared is not None:
            return shared
        return int(self._config_value(self.adapter.config_keys.num_kv_heads) or self.num_heads)

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        shared = self._per_layer_size("head_dim")
        if shared is not None:
            return shared
        return int(self._config_value(self.adapter.config_keys.head_dim) or self.hidden_size // self.num_heads)

    @property
    def hidden_size(self) -> int:
        """Width of the residual stream."""
        return int(self._config_value(self.adapter.config_keys.hidden_size))

    @property
    def vocab_size(self) -> int:
        """Number of logits per position."""
        return int(self._config_value(self.adapter.config_keys.vocab_size))

    # -- values inside a trace -----------------------------------------------

    @property
    def token_embeddings(self) -> torch.Tensor:
        """The embedding module's output (before any scaling the family applies inside layers)."""
        with standard_errors(self, "token_embeddings"):
            return self.embed_tokens.output

    @token_embeddings.setter
    def token_embeddings(self, value: torch.Tensor) -> None:
        with standard_errors(self, "token_embeddings"):
            current = self.embed_tokens.output
        check_written(self, "token_embeddings", value, current)
        if value.shape != current.shape:
            raise ShapeError(
                f"token_embeddings has shape {tuple(current.shape)}, the value written has "
                f"{tuple(value.shape)}; write a tensor of the same shape."
            )
        # A leaf that requires grad cannot be edited in place (CTRL scales the embedding with `*=`);
        # a copy of it can, and the gradient still reaches the leaf.
        self.embed_tokens.output = value.clone() if value.is_leaf and value.requires_grad else value

    @property
    def logits(self) -> torch.Tensor:
        """The model's output logits, (batch, seq, vocab)."""
        with standard_errors(self, "logits"):
            return self.output.logits

    @logits.setter
    def logits(self, value: torch.Tensor) -> None:
        with standard_errors(self, "logits"):
            output = self.output
        current = output.logits
        check_written(self, "logits", value, current)
        if value.shape != current.shape:
            raise ShapeError(
                f"logits has shape {tuple(current.shape)} (batch, seq, vocab) but the value written has shape "
                f"{tuple(value.shape)}; write a tensor of the same shape (edit a clone of `model.logits`)."
            )
        output.logits = value

    @property
    def next_token_probs(self) -> torch.Tensor:
        """Softmax of the last position's logits, (batch, vocab)."""
        return self.logits[:, -1, :].softmax(dim=-1)

    def _model_input(self, name: str) -> Optional[torch.Tensor]:
        with standard_errors(self, name):
            args, kwargs = self.inputs
        if name in kwargs:
            return kwargs[name]
        return args[0] if name == "input_ids" and args else None

    @property
    def input_ids(self) -> torch.Tensor:
        """The token ids the model was called with (left-padded for a batch)."""
        return self._model_input("input_ids")

    @property
    def attention_mask(self) -> Optional[torch.Tensor]:
        """The attention mask the model was called with (None for a lone unpadded input)."""
        return self._model_input("attention_mask")

    # -- interventions -------------------------------------------------------

    def _layer_list(self, layers: Union[int, Sequence[int]]) -> list[int]:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, (int, Sequence, range, torch.Tensor)):
            raise LayerIndexError(
                f"layers must be a layer index or a list of them, got {type(layers).__name__} {layers!r}; "
                f"use ints 0..{self.num_layers - 1} (num_layers={self.num_layers})."
            )
        items = [layers] if isinstance(layers, int) else [int(i) if isinstance(i, torch.Tensor) else i for i in layers]
        if not items:
            raise LayerIndexError("no layer was given; pass a layer index or a non-empty list of them.")
        return sorted({normalize_index(i, self.num_layers, "layer", "num_layers") for i in items})

    def steer(
        self,
        layers: Union[int, Sequence[int]],
        steering_vector: torch.Tensor,
        factor: float = 1,
        token_positions: Indices = None,
        batch_index: Indices = None,
    ) -> None:
        """Inside a trace, add ``factor * steering_vector`` to the residual stream after each layer.

        ``token_positions`` and ``batch_index`` (int, list or slice) restrict where it is added.
        """
        if not isinstance(steering_vector, torch.Tensor) or steering_vector.shape != (self.hidden_size,):
            shape = tuple(steering_vector.shape) if isinstance(steering_vector, torch.Tensor) else type(steering_vector).__name__
            raise ShapeError(
                f"steering_vector must have shape ({self.hidden_size},) (hidden_size), got {shape}; "
                f"build it from a layer output, e.g. `model.layers_output[i][0, -1]`."
            )
        check_steering_vector(self, steering_vector, factor)
        for layer in self._layer_list(layers):
            hidden = self.layers_output[layer]
            batch, seq = hidden.shape[:2]
            rows = _selected(batch, batch_index, "batch_index", "rows (prompts)", hidden.device).reshape(-1, 1)
            cols = _selected(seq, token_positions, "token_positions", "tokens", hidden.device).reshape(1, -1)
            steered = hidden.clone()
            steered[rows, cols] += factor * steering_vector.to(hidden.device, hidden.dtype)
            self.layers_output[layer] = steered

    def skip_layers(self, start: int, end: int, skip_with: Optional[torch.Tensor] = None) -> None:
        """Inside a trace, skip layers ``start..end`` (inclusive): their output is their input.

        ``skip_with`` replaces the hidden state instead (default: ``layers_input[start]``).
        A layer that returns more than its hidden state, and something in those other entries
        (a recurrent state the model reads on), is run, and only its hidden output is replaced;
        so is a layer whose keys and values a later layer attends over (`ConfigKeys.kv_shared`),
        which that later layer could not run without; any other layer does not run at all.
        """
        first = normalize_index(start, self.num_layers, "layer", "num_layers")
        last = normalize_index(end, self.num_layers, "layer", "num_layers")
        if last < first:
            raise LayerIndexError(f"skip_layers(start={start}, end={end}): end comes before start; pass start <= end.")
        if skip_with is None:
            replacement = self.layers_input[first]
        else:
            current = self.layers_input[first]
            if isinstance(skip_with, torch.Tensor) and skip_with.shape != current.shape:
                raise ShapeError(
                    f"skip_with has shape {tuple(skip_with.shape)}, but layers {first}..{last} pass on a hidden "
                    f"state of shape {tuple(current.shape)} (batch, seq, hidden); pass a tensor of that shape "
                    f"(e.g. a saved `layers_input[{first}]` of the same prompts)."
                )
            check_written(self, "skip_with", skip_with, current)
            replacement = skip_with
        declare_shared = self.adapter.config_keys.kv_shared
        kv_sources = set(dict(declare_shared(self.config)).values()) if declare_shared is not None else set()
        for layer in range(first, last + 1):
            returned = self._layer_outputs.get(layer)
            if (returned is not None and returned[2]) or layer in kv_sources:
                self.layers_output[layer] = replacement
            else:
                self.layers[layer].skip(_packed(replacement, returned))

    def skip_layer(self, layer: int, skip_with: Optional[torch.Tensor] = None) -> None:
        """Inside a trace, skip one layer (its output is its input, or ``skip_with``)."""
        self.skip_layers(layer, layer, skip_with)

    def project_on_vocab(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from a residual-stream state, through the family's own final projection."""
        check_hidden_argument(self, hidden, "project_on_vocab")
        if self.adapter.final_projection is not None:
            return self.adapter.final_projection(self, hidden)
        if "ln_final" in self.adapter.absent:
            return self.lm_head(hidden)
        return self.lm_head(self.ln_final(hidden))

    def get_topk_closest_tokens(self, hidden: torch.Tensor, k: int = 10) -> torch.return_types.topk:
        """The ``k`` most probable tokens (probabilities and ids) for a residual-stream state."""
        return self.project_on_vocab(hidden).softmax(dim=-1).topk(k, dim=-1)


def _gives_position_ids(invokes: list) -> bool:
    """Whether the caller passed position_ids (as a keyword or in an encoding), which are kept."""
    for inputs, kwargs in invokes:
        if "position_ids" in kwargs or any(isinstance(given, Mapping) and "position_ids" in given for given in inputs):
            return True
    return False


def _note_layer_shape(shapes: dict, layer: int, module: Any, args: tuple, kwargs: dict) -> None:
    hidden = args[0] if args else kwargs.get("hidden_states")
    if isinstance(hidden, torch.Tensor) and hidden.dim() >= 2:
        shapes[layer] = (int(hidden.shape[0]), int(hidden.shape[1]))


def _note_layer_output(outputs: dict, layer: int, module: Any, args: tuple, output: Any) -> None:
    """Record the container a layer returns, its size, and whether it carries more than the hidden state."""
    if isinstance(output, (tuple, list)):
        outputs[layer] = (type(output), len(output), any(entry is not None for entry in output[1:]))


def _packed(hidden: Any, kind: Optional[tuple[type, int, bool]]) -> Any:
    """``hidden`` in the container a layer returns (its other entries None), as the model reads it.

    A layer that returns ``(hidden, attention_weights)`` is read with ``outputs[0]``;
    skipping it with a bare tensor would index the batch instead. The container is
    recorded by a forward hook on each call (the load-time check runs one).
    """
    if kind is None:
        return hidden
    container, size = kind[:2]
    return container((hidden, *([None] * (size - 1))))


def _selected(size: int, selection: Indices, argument: str, what: str, device: Any) -> torch.Tensor:
    """The indices ``selection`` picks out of ``size`` (None: all), or an error naming the valid range."""
    everything = torch.arange(size, device=device)
    if selection is None:
        return everything
    if isinstance(selection, slice):
        return everything[selection]
    items = [selection] if isinstance(selection, int) else list(selection) if isinstance(selection, Sequence) else None
    if items is None or not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise LayerIndexError(
            f"{argument} must be an int, a non-empty list of ints or a slice, got {selection!r}; "
            f"use 0..{size - 1} (or negative indices from -{size})."
        )
    for item in items:
        if not -size <= item < size:
            raise LayerIndexError(
                f"{argument} holds {item}, but the trace has {size} {what}; use 0..{size - 1} "
                f"(or negative indices from -{size})."
            )
    return everything[items]
