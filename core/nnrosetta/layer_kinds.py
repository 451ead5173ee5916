"""Layer kinds: what mixes tokens in each layer of a hybrid or recurrent model.

Hybrid families interleave softmax attention with other token mixers (Qwen3-Next's
gated delta nets, Jamba's Mamba blocks, LFM2's short convolutions) and recurrent
families have no softmax attention at all. Calling every mixer ``self_attn`` would
let "attention probabilities" silently mean something else, so the adapter declares
each layer's kind from the config (`LayerKinds`), never the core by family name:

- every layer has ``layers_input[i]`` / ``layers_output[i]``;
- every layer with a token mixer has ``mixers_input[i]`` / ``mixers_output[i]``,
  whatever the mixer is (an attention, a delta net, a state-space scan, a convolution);
- ``attentions_*[i]``, ``attention_probabilities[i]`` and the per-head values exist
  only on softmax-attention layers (`SOFTMAX_KINDS`); elsewhere a `CapabilityError`
  names the layer's kind and the layers that have them;
- ``mlps_*[i]`` exist where the layer kind has an MLP (or MoE) block;
- ``parallel_mixers_input/output[i]`` exist where the kind declares a `ParallelMixer`: a second
  token mixer that reads the same normed input as the layer's mixer, its output added beside it.

An adapter that declares no kinds is a plain transformer: every layer is `ATTENTION`
and its mixer is ``self_attn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

from .config_sources import language_configs
from .errors import AccessorAssignmentError, CapabilityError, InvalidAdapterError, RenamingError

if TYPE_CHECKING:  # torch and the accessors load with the model, not with an adapter declaration
    import torch
    from nnsight.intervention.envoy import Envoy

    from .model import StandardizedTransformer

#: Softmax attention over every earlier position (the transformer's own mixer).
ATTENTION = "attention"
#: Softmax attention over a window of recent positions (Gemma's, Mistral's sliding layers).
SLIDING_ATTENTION = "sliding_attention"
#: Attention without a softmax: a kernelised or gated delta-rule state (Qwen3-Next, Kimi Linear, Lightning).
LINEAR_ATTENTION = "linear_attention"
#: A selective state-space scan (Mamba, Mamba-2 blocks in Jamba, Zamba, Bamba, Falcon-H1, Nemotron-H).
STATE_SPACE = "state_space"
#: A short causal convolution over the sequence (LFM2's gated conv blocks).
CONVOLUTION = "convolution"
#: A recurrent cell: RWKV's time mixing, xLSTM's mLSTM, RecurrentGemma's RG-LRU.
RECURRENT = "recurrent"
#: No token mixer at all: the layer is one MLP or MoE block (Nemotron-H's "-" and "E" layers).
MLP_ONLY = "mlp"

KIND_DOCS: Mapping[str, str] = MappingProxyType({
    ATTENTION: "softmax attention over every earlier position",
    SLIDING_ATTENTION: "softmax attention over a window of recent positions",
    LINEAR_ATTENTION: "linear attention (a recurrent state updated without a softmax)",
    STATE_SPACE: "a selective state-space scan (Mamba-style)",
    CONVOLUTION: "a short causal convolution over the sequence",
    RECURRENT: "a recurrent cell (RWKV, xLSTM, RG-LRU)",
    MLP_ONLY: "no token mixer: the layer is a single MLP or MoE block",
})
KINDS = tuple(KIND_DOCS)
#: Kinds whose mixer forms softmax probabilities: attention accessors, probabilities and heads.
SOFTMAX_KINDS = frozenset({ATTENTION, SLIDING_ATTENTION})
#: The standard sublayer name that serves whatever mixes tokens in a layer.
MIXER = "mixer"
#: The standard sublayer name of a second token mixer run beside the first (`ParallelMixer`).
PARALLEL_MIXER = "parallel_mixer"

KindsOfConfig = Callable[[Any], Sequence[str]]


@dataclass(frozen=True)
class ParallelMixer:
    """A second token mixer of a layer, beside the kind's mixer: both read one normed input, both outputs are added.

    The layer computes ``h + attention_scale * mixer(x) + scale * parallel(x')`` (then its MLP), where
    ``x'`` is the same normed input as the mixer's (the family may scale it on the way in: then
    ``parallel_mixers_input[i]`` is what the module really reads).

    Fields:
        path: the module's path from the layer (``"mamba"``).
        kind: what it computes, one of `KINDS` (a softmax kind is refused: a second attention is no
            "parallel mixer" but a differently shaped layer).
        scale: the factor on its output in the residual add: None (1), a number, or a config key.
    """

    path: str
    kind: str
    scale: Union[None, float, str] = None

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.path, str) or not self.path:
            found.append(f"ParallelMixer path must be a module path, got {self.path!r}")
        if self.kind not in KINDS or self.kind in SOFTMAX_KINDS or self.kind == MLP_ONLY:
            found.append(f"ParallelMixer kind must be a non-softmax mixing kind, got {self.kind!r}")
        if self.scale is not None and not (
            (isinstance(self.scale, (int, float)) and not isinstance(self.scale, bool))
            or (isinstance(self.scale, str) and self.scale)
        ):
            found.append(f"ParallelMixer scale must be None, a number or a config key, got {self.scale!r}")
        return found


@dataclass(frozen=True)
class LayerKinds:
    """An adapter's declaration of each layer's kind and where that kind keeps its modules.

    Fields:
        kinds: ``(config) -> sequence of kinds``, one per layer, read from the config
            (``layer_types``, ``layers_block_type``, ``attn_layer_indices``...); see `from_config`.
        mixers: kind -> path from the layer to its token mixer (default ``"self_attn"``,
            the standard module); None for a kind without one (`MLP_ONLY`); a tuple of paths for a
            kind whose layers come in several wrappings (the first path a layer has is its mixer).
        mlps: kind -> path from the layer to its MLP or MoE block (default ``"mlp"``);
            None for a kind whose layers have none.
        no_mlp: why layers without an MLP have none (shown in the error).
        residuals: kind -> `Residual` for kinds whose layers add their sublayers otherwise than
            the adapter's `residual` says (OLMo-hybrid: post-normed attention layers, pre-normed
            delta-net layers).
        mixer_input_branches: kind -> path from the layer to a module, on some layers of that kind,
            whose output the layer adds to its mixer's input (Zamba's shared attention block feeding
            its Mamba mixer); on those layers the mixer's input mixes tokens (it is checked causal,
            not per token).
        parallel_mixers: kind -> `ParallelMixer` for kinds whose layers run a second token mixer
            beside the first on the same normed input (Falcon-H1: attention and a Mamba-2 mixer),
            served as ``parallel_mixers_input/output[i]``.
    """

    kinds: KindsOfConfig
    mixers: Mapping[str, Union[None, str, tuple[str, ...]]] = field(default_factory=dict)
    mlps: Mapping[str, Optional[str]] = field(default_factory=dict)
    no_mlp: str = "the layer is a token mixer alone"
    residuals: Mapping[str, Any] = field(default_factory=dict)
    mixer_input_branches: Mapping[str, str] = field(default_factory=dict)
    parallel_mixers: Mapping[str, ParallelMixer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("mixers", "mlps", "residuals", "parallel_mixers", "mixer_input_branches"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def mixer_path(self, kind: str, layer: Any = None) -> Optional[str]:
        """The kind's mixer path; of several, the first that ``layer`` (an envoy) has (the first without one)."""
        path = self.mixers.get(kind, None if kind == MLP_ONLY else "self_attn")
        if not isinstance(path, tuple):
            return path
        if layer is not None:
            from .validation import _has_path

            for candidate in path:
                if _has_path(layer, candidate):
                    return candidate
        return path[0]

    def mlp_path(self, kind: str) -> Optional[str]:
        return self.mlps.get(kind, "mlp")

    def problems(self) -> list[str]:
        """What is malformed in this declaration (empty when it is well formed)."""
        found = [] if callable(self.kinds) else [f"kinds must be a function (config) -> kinds, got {self.kinds!r}"]
        for name in ("mixers", "mlps", "mixer_input_branches"):
            for kind, path in getattr(self, name).items():
                if kind not in KINDS:
                    found.append(f"{name} names kind {kind!r}; the kinds are: {', '.join(KINDS)}")
                if name == "mixers" and isinstance(path, tuple) and path and all(isinstance(p, str) and p for p in path):
                    continue
                if path is not None and (not isinstance(path, str) or not path):
                    found.append(f"{name}[{kind!r}] must be a module path or None, got {path!r}")
        for kind, residual in self.residuals.items():
            if kind not in KINDS:
                found.append(f"residuals names kind {kind!r}; the kinds are: {', '.join(KINDS)}")
            problems = getattr(residual, "problems", None)
            found += [f"residuals[{kind!r}]: {problem}" for problem in (problems() if problems else ["is no Residual"])]
        for kind, parallel in self.parallel_mixers.items():
            if kind not in KINDS:
                found.append(f"parallel_mixers names kind {kind!r}; the kinds are: {', '.join(KINDS)}")
            problems = getattr(parallel, "problems", None)
            found += [f"parallel_mixers[{kind!r}]: {p}" for p in (problems() if problems else ["is no ParallelMixer"])]
        if self.mixers.get(MLP_ONLY):
            found.append(f"mixers gives {MLP_ONLY!r} layers a mixer; they have none by definition")
        return found


def from_config(key: str, mapping: Mapping[Any, str], default: Optional[str] = None) -> KindsOfConfig:
    """Kinds read from the config list ``key`` (on the text config), each entry mapped through ``mapping``.

    ``mapping`` takes the family's own names (``"full_attention"``, ``"mamba"``, ``"*"``) to kinds;
    ``default`` is used for entries it does not name (None: such an entry is an error).
    """

    def kinds(config: Any) -> list[str]:
        values = _config_attribute(config, key)
        if values is None:
            raise InvalidAdapterError(f"the layer kinds are read from config.{key}, which this config does not have")
        if isinstance(values, str):
            values = list(values)  # Nemotron-H's pattern strings: one character per layer
        result = []
        for value in values:
            kind = mapping.get(value, default)
            if kind is None:
                raise InvalidAdapterError(
                    f"config.{key} holds {value!r}, which the adapter's layer kinds do not map "
                    f"(it maps {', '.join(map(repr, mapping))}); the adapter must declare that layer type"
                )
            result.append(kind)
        return result

    return kinds


def every_layer(kind: str, num_layers_key: str = "num_hidden_layers") -> KindsOfConfig:
    """Kinds of a family whose layers are all ``kind`` (Mamba: every layer a state-space scan)."""
    return lambda config: [kind] * int(_config_attribute(config, num_layers_key))


def _config_attribute(config: Any, key: str) -> Any:
    for source in language_configs(config):
        value = getattr(source, key, None)
        if value is not None:
            return value
    return None


# -- what each layer serves --------------------------------------------------------------------


def declared_kinds(model: "StandardizedTransformer") -> tuple[str, ...]:
    """Each layer's kind: the adapter's declaration read from the config (all `ATTENTION` when undeclared)."""
    spec = model.adapter.layer_kinds
    count = model.num_layers
    if spec is None:
        return (ATTENTION,) * count
    kinds = tuple(spec.kinds(model.config))
    unknown = sorted({kind for kind in kinds if kind not in KINDS})
    if unknown or len(kinds) != count:
        raise RenamingError(
            f"adapter {model.adapter.name!r} ({model.adapter.plugin or '<explicit>'}) declares layer kinds "
            f"{list(kinds)} for a model with {count} layers"
            + (f"; {', '.join(map(repr, unknown))} are no layer kinds (the kinds: {', '.join(KINDS)})" if unknown else "")
            + ". Fix the adapter's `layer_kinds`: one known kind per layer."
        )
    return kinds


def softmax_layers(model: "StandardizedTransformer") -> list[int]:
    """The layers whose mixer is softmax attention (every layer when no kinds are declared)."""
    return [i for i, kind in enumerate(declared_kinds(model)) if kind in SOFTMAX_KINDS]


def _describe(layers: Sequence[int], verb: str = "have") -> str:
    """``layers [1, 3] have`` or ``no layer has`` (``verb`` in its plural form)."""
    singular = {"have": "has", "do": "does"}[verb]
    return f"layers {list(layers)} {verb}" if layers else f"no layer {singular}"


def kind_path(model: "StandardizedTransformer", layer: int, sublayer: str, where: str) -> str:
    """The path (from the layer) of ``sublayer`` on layer ``layer``, or a `CapabilityError` saying why it has none.

    ``sublayer`` is ``"mixer"``, ``"self_attn"`` or ``"mlp"``; a standard name returned means
    "serve it as before" (spans and absent modules apply).
    """
    spec = model.adapter.layer_kinds
    if spec is None and sublayer == PARALLEL_MIXER:
        raise CapabilityError(
            f"`parallel_mixers_{where}[{layer}]`: this {model.adapter.model_type!r} model's adapter declares no "
            f"layer kinds, so no layer runs a second token mixer. Read `attentions_{where}[{layer}]`."
        )
    if spec is None:
        return "self_attn" if sublayer == MIXER else sublayer
    kinds = declared_kinds(model)
    kind = kinds[layer]
    label = f"layer {layer} of this {model.adapter.model_type!r} model is a {kind!r} layer ({KIND_DOCS[kind]})"
    if sublayer == MIXER:
        path = spec.mixer_path(kind, model.layers[layer])
        if path is None:
            mixing = [i for i, k in enumerate(kinds) if spec.mixer_path(k) is not None]
            raise CapabilityError(
                f"`mixers_{where}[{layer}]`: {label}, which has no token mixer; {_describe(mixing)} one. "
                f"Use `mlps_{where}[{layer}]` or `layers_{where}[{layer}]`."
            )
        return path
    if sublayer == "self_attn":
        if kind not in SOFTMAX_KINDS:
            attention = [i for i, k in enumerate(kinds) if k in SOFTMAX_KINDS]
            raise CapabilityError(
                f"`attentions_{where}[{layer}]` (and attention probabilities, heads): {label}, not softmax "
                f"attention; {_describe(attention)} softmax attention. Read this layer's token mixer "
                f"with `mixers_{where}[{layer}]`."
            )
        return spec.mixer_path(kind, model.layers[layer]) or "self_attn"
    if sublayer == PARALLEL_MIXER:
        parallel = spec.parallel_mixers.get(kind)
        if parallel is None:
            having = [i for i, k in enumerate(kinds) if k in spec.parallel_mixers]
            raise CapabilityError(
                f"`parallel_mixers_{where}[{layer}]`: {label}, which runs one token mixer, no second one beside "
                f"it; {_describe(having)} one. Read its token mixer with `mixers_{where}[{layer}]`."
            )
        return parallel.path
    if sublayer == "mlp":
        path = spec.mlp_path(kind)
        if path is None:
            with_mlp = [i for i, k in enumerate(kinds) if spec.mlp_path(k) is not None]
            raise CapabilityError(
                f"`mlps_{where}[{layer}]`: {label} and has no MLP ({spec.no_mlp}); {_describe(with_mlp)} one."
            )
        return path
    return sublayer


#: The per-layer accessors and the sublayer each reads.
ACCESSOR_SUBLAYERS: Mapping[str, Optional[str]] = MappingProxyType({
    "layers_input": None, "mixers_input": MIXER, "attentions_input": "self_attn", "attentions_output": "self_attn",
    "mixers_output": MIXER, "parallel_mixers_input": PARALLEL_MIXER, "parallel_mixers_output": PARALLEL_MIXER,
    "mlps_input": "mlp", "mlps_output": "mlp", "layers_output": None,
})


def serves(model: "StandardizedTransformer", accessor: str, layer: int) -> bool:
    """Whether the per-layer ``accessor`` (``"attentions_output"``...) exists on layer ``layer``."""
    sublayer = ACCESSOR_SUBLAYERS[accessor]
    if sublayer is None:
        return True
    if sublayer == "mlp" and "mlp" in model.adapter.absent:
        return False
    try:
        kind_path(model, layer, sublayer, "output")
    except CapabilityError:
        return False
    return True


def served_accessors(model: "StandardizedTransformer", layer: int, names: Sequence[str]) -> tuple[str, ...]:
    """The accessors among ``names`` that layer ``layer`` serves (all but parallel mixers when no kinds are declared)."""
    if model.adapter.layer_kinds is None:  # a plain transformer: one mixer, its attention
        return tuple(name for name in names if ACCESSOR_SUBLAYERS.get(name) != PARALLEL_MIXER)
    return tuple(name for name in names if serves(model, name, layer))


# -- load-time validation ------------------------------------------------------------------------


def check_kind_structure(model: "StandardizedTransformer") -> None:
    """Every layer's declared kind resolves: its mixer and MLP paths exist (else `RenamingError`)."""
    from .validation import _adapter_label, _has_path, _native_children, check_root_modules

    adapter = model.adapter
    check_root_modules(model)
    kinds = declared_kinds(model)
    spec = adapter.layer_kinds
    for index, kind in enumerate(kinds):
        layer = model.layers[index]
        paths = {"mixer": spec.mixer_path(kind, layer)}
        if kind in spec.parallel_mixers:
            paths["parallel mixer"] = spec.parallel_mixers[kind].path
        if "mlp" not in adapter.absent:
            paths["mlp"] = spec.mlp_path(kind)
        for role, path in paths.items():
            if path is None:
                continue
            span = adapter.spans.get(path)
            for part in (span.start, span.end) if span is not None else (path,):
                if not _has_path(layer, part):
                    raise RenamingError(
                        f"{_adapter_label(model)}: layer {index} ({type(layer._module).__name__}) is declared a "
                        f"{kind!r} layer whose {role} is `{part}`, but it has no such module; its children are: "
                        f"{_native_children(layer)}. Fix the adapter's `layer_kinds` (mixers/mlps) or the kinds "
                        f"it reads from the config."
                    )


def validate_layer_kinds(model: "StandardizedTransformer") -> None:
    """The load-time checks of a model with declared kinds: structure, points on an attention layer, shapes."""
    import torch

    from .accessors import module_at
    from .source_points import verify_first_level
    from .validation import DUMMY_SEQUENCE_LENGTH, _adapter_label

    check_kind_structure(model)
    adapter = model.adapter
    attention = softmax_layers(model)
    if attention and "self_attn" not in adapter.spans:
        layer = model.layers[attention[0]]
        mixer = module_at(layer, kind_path(model, attention[0], "self_attn", "output"))
        served = lambda spec: spec is not None and not (spec.refuse and spec.refuse(model.config))  # noqa: E731
        declared = []  # (field, point, the spec's module: its own path from the layer, else the mixer)
        if served(adapter.attention):
            declared.append(("attention.probabilities", adapter.attention.probabilities, adapter.attention.module))
        heads = adapter.heads
        if served(heads):
            if heads.attention_call is not None:
                declared.append(("heads.attention_call", heads.attention_call, heads.module))
            if heads.fused_projection is None:
                declared += [(f"heads.{name}", getattr(heads, name), heads.module) for name in ("queries", "keys", "values")]
        for field_name, point, path in declared:
            verify_first_level(module_at(layer, path) if path else mixer, point, adapter, field_name)
    seen: dict[str, tuple] = {}
    input_ids = torch.arange(DUMMY_SEQUENCE_LENGTH).unsqueeze(0) % max(model.vocab_size, 1)
    with torch.no_grad(), model.trace(input_ids):
        for index in range(model.num_layers):
            for name in served_accessors(model, index, ("mixers_output", "mlps_output", "layers_output")):
                seen[f"{name}[{index}]"] = tuple(getattr(model, name)[index].shape)
        seen["logits"] = tuple(model.logits.shape)
    hidden = (1, DUMMY_SEQUENCE_LENGTH, model.hidden_size)
    for name, shape in seen.items():
        expected = (1, DUMMY_SEQUENCE_LENGTH, model.vocab_size) if name == "logits" else hidden
        if shape != expected:
            raise RenamingError(
                f"{_adapter_label(model)}: `{name}` has shape {shape} on a (1, {DUMMY_SEQUENCE_LENGTH}) input, "
                f"expected {expected}. The adapter's layer kinds point that name at a module that does not "
                f"produce the hidden state."
            )


# -- the model's interface -----------------------------------------------------------------------


class SoftmaxLayersOnly:
    """A per-layer attention view (probabilities, heads) served only on softmax-attention layers."""

    def __init__(self, model: "StandardizedTransformer", name: str, inner: Any) -> None:
        self._model = model
        self._name = name
        self._inner = inner

    def __len__(self) -> int:
        return len(self._inner)

    def __getitem__(self, index: int) -> Any:
        require_softmax(self._model, index, self._name)
        return self._inner[index]

    def __setitem__(self, index: int, value: Any) -> None:
        require_softmax(self._model, index, self._name)
        self._inner[index] = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def require_softmax(model: "StandardizedTransformer", index: int, what: str) -> None:
    """Raise a `CapabilityError` unless layer ``index`` is a softmax-attention layer."""
    from .accessors import normalize_index

    if model.adapter.layer_kinds is None:
        return
    layer = normalize_index(index, model.num_layers, "layer", "num_layers")
    kind = declared_kinds(model)[layer]
    if kind not in SOFTMAX_KINDS:
        raise CapabilityError(
            f"`{what}[{index}]`: layer {layer} of this {model.adapter.model_type!r} model is a {kind!r} layer "
            f"({KIND_DOCS[kind]}), which forms no softmax attention; {_describe(softmax_layers(model), 'do')}. "
            f"Read its token mixer with `mixers_output[{index}]`."
        )


class LayerKindsInterface:
    """The layer-kind part of `StandardizedTransformer`: kinds, mixers of any kind, honest attention views."""

    @property
    def mixers_input(self) -> Any:
        """Layer i's token-mixer input (batch, seq, hidden), whatever the mixer's kind; readable and writable."""
        return _activations(self, "mixers_input", "input")

    @property
    def mixers_output(self) -> Any:
        """Layer i's token-mixer output (batch, seq, hidden), whatever the mixer's kind; readable and writable."""
        return _activations(self, "mixers_output", "output")

    @property
    def mixers(self) -> Any:
        """Layer i's token-mixer module (an attention, a delta net, a Mamba block, a convolution)."""
        from .accessors import ModuleAccessor

        return ModuleAccessor(self, "mixers", MIXER)

    @property
    def parallel_mixers_input(self) -> Any:
        """Layer i's second token mixer's input (a `ParallelMixer`), where its kind declares one."""
        return _activations(self, "parallel_mixers_input", "input", PARALLEL_MIXER)

    @property
    def parallel_mixers_output(self) -> Any:
        """Layer i's second token mixer's output (batch, seq, hidden), before the layer scales and adds it."""
        return _activations(self, "parallel_mixers_output", "output", PARALLEL_MIXER)

    @parallel_mixers_input.setter
    def parallel_mixers_input(self, value: Any) -> None:
        _refuse_replacing("parallel_mixers_input")

    @parallel_mixers_output.setter
    def parallel_mixers_output(self, value: Any) -> None:
        _refuse_replacing("parallel_mixers_output")

    @mixers_input.setter
    def mixers_input(self, value: Any) -> None:
        _refuse_replacing("mixers_input")

    @mixers_output.setter
    def mixers_output(self, value: Any) -> None:
        _refuse_replacing("mixers_output")

    @property
    def layer_kinds(self) -> tuple[str, ...]:
        """Each layer's kind (`KINDS`), as the adapter reads it from the config."""
        return declared_kinds(self)

    def layers_of_kind(self, kind: str) -> list[int]:
        """The indices of the layers of ``kind`` (one of `KINDS`)."""
        if kind not in KINDS:
            raise CapabilityError(f"{kind!r} is no layer kind; the kinds are: {', '.join(KINDS)}.")
        return [i for i, k in enumerate(declared_kinds(self)) if k == kind]

    def _softmax_only(self, name: str, inner: Any) -> Any:
        return inner if self.adapter.layer_kinds is None else SoftmaxLayersOnly(self, name, inner)

    @property
    def attention_probabilities(self) -> Any:
        return self._softmax_only("attention_probabilities", super().attention_probabilities)

    @property
    def queries(self) -> Any:
        return self._softmax_only("queries", super().queries)

    @property
    def keys(self) -> Any:
        return self._softmax_only("keys", super().keys)

    @property
    def values(self) -> Any:
        return self._softmax_only("values", super().values)

    @property
    def rotated_queries(self) -> Any:
        return self._softmax_only("rotated_queries", super().rotated_queries)

    @property
    def rotated_keys(self) -> Any:
        return self._softmax_only("rotated_keys", super().rotated_keys)

    @property
    def heads_output(self) -> Any:
        return self._softmax_only("heads_output", super().heads_output)

    def attention_patterns(self, index: int) -> "torch.Tensor":
        require_softmax(self, index, "attention_patterns")
        return super().attention_patterns(index)

    def ablate_heads(self, layer: int, heads: Union[int, Sequence[int]]) -> None:
        require_softmax(self, layer, "ablate_heads")
        return super().ablate_heads(layer, heads)


def _activations(model: "StandardizedTransformer", name: str, where: str, sublayer: str = MIXER) -> Any:
    from .accessors import ActivationAccessor

    return ActivationAccessor(model, name, sublayer, where)


def _refuse_replacing(name: str) -> None:
    raise AccessorAssignmentError(
        f"`model.{name} = ...` would replace the accessor; assign one layer's value inside a trace: "
        f"`model.{name}[i] = tensor`."
    )


def mixer_module(model: "StandardizedTransformer", layer: int) -> "Envoy":
    """The envoy of layer ``layer``'s token mixer (whatever its kind)."""
    from .accessors import module_at, normalize_index

    layer = normalize_index(layer, model.num_layers, "layer", "num_layers")
    return module_at(model.layers[layer], kind_path(model, layer, MIXER, "output"))
