"""`Adapter`: a plugin's declaration of how one architecture family is served.

An adapter is data first: which HuggingFace model types it claims, how the
family's module paths map to the standard names, which config keys hold the
sizes, where attention probabilities and heads live, how MoE blocks route, and a
tiny config for offline conformance. The family is declared once; each claimed
model type states only what differs from it in a `Variant`, and the registry
merges the two (`Adapter.for_type`) and validates the result at registration,
naming the plugin, the type and the field of any mistake. Callables appear only
where data cannot say it (a final projection with soft-capping, a refusal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .capabilities import Capability
from .errors import InvalidAdapterError
from .layer_kinds import LayerKinds
from .specs import AttentionSpec, ConfigKeys, HeadsSpec, MoESpec, Refusal, Residual, Span

if TYPE_CHECKING:
    import torch

    from .model import StandardizedTransformer

#: Standard module names a rename map may target, and where each lives.
ROOT_MODULES = ("embed_tokens", "layers", "ln_final", "lm_head")
LAYER_MODULES = ("self_attn", "mlp")
STANDARD_MODULES = ROOT_MODULES + LAYER_MODULES
#: Standard modules an adapter may declare absent (the model has no such module).
ABSENTABLE_MODULES = ("ln_final", "mlp")
#: Standard modules that may be a span (input of one module, output of another).
SPANNABLE_MODULES = ("self_attn", "mlp")

#: The per-layer activation accessors, in forward order.
ACTIVATION_ACCESSORS = (
    "layers_input", "attentions_input", "attentions_output", "mlps_input", "mlps_output", "layers_output",
)

FinalProjection = Callable[["StandardizedTransformer", "torch.Tensor"], "torch.Tensor"]


class _Inherit:
    """Marker: a variant field left unset takes the family's value."""

    _instance: Optional["_Inherit"] = None

    def __new__(cls) -> "_Inherit":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INHERIT"

    def __bool__(self) -> bool:
        return False


INHERIT: Any = _Inherit()


@dataclass(frozen=True)
class Variant:
    """What one claimed model type changes in its family's declaration; unset fields inherit.

    Fields (each as on `Adapter`):
        rename: entries merged over the family's map (a value of None removes an entry).
        config_keys: ``{field: key}`` merged over the family's `ConfigKeys`.
        final_projection, attention, heads, moe, residual, layer_kinds: replace the family's
            (None drops it for this type: the capability is then not claimed).
        spans, absent, mutated_in_place: merged over the family's.
        tiny_config: merged over the family's tiny config.
        known_broken: merged over the family's.
        not_padding_invariant: replaces the family's (None: this type is padding-invariant).
        positions_from_inputs: replaces the family's.
        refuse: ``(config) -> reason`` for configs of this type that cannot be served.
        unsupported: the type is claimed only to refuse it at load with this reason.
        notes: one line shown by ``nnrosetta adapters`` for this type.
    """

    rename: Mapping[str, Optional[str]] = field(default_factory=dict)
    config_keys: Mapping[str, Optional[str]] = field(default_factory=dict)
    final_projection: Any = INHERIT
    attention: Any = INHERIT
    heads: Any = INHERIT
    moe: Any = INHERIT
    residual: Any = INHERIT
    layer_kinds: Any = INHERIT
    spans: Mapping[str, Span] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)
    mutated_in_place: Mapping[str, str] = field(default_factory=dict)
    tiny_config: Mapping[str, Any] = field(default_factory=dict)
    known_broken: Mapping[str, str] = field(default_factory=dict)
    not_padding_invariant: Any = INHERIT
    positions_from_inputs: Any = INHERIT
    refuse: Any = INHERIT
    unsupported: Optional[str] = None
    notes: str = ""

    def __post_init__(self) -> None:
        for name in ("rename", "config_keys", "spans", "absent", "mutated_in_place", "tiny_config", "known_broken"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


@dataclass(frozen=True)
class Adapter:
    """How one architecture family maps onto the standard interface.

    Fields:
        name: unique adapter name, e.g. ``"llama"``.
        model_types: HuggingFace ``config.model_type`` values this adapter claims.
        rename: family module path -> standard name. Root paths are written from
            the top model (``"model.layers"``); per-layer ones from a layer
            (``"attn"``). Standard names already native need no entry.
        model_classes: model class names claimed when no adapter claims the type.
        config_keys: where the config keeps layer, head and size counts.
        final_projection: ``(model, hidden) -> logits`` when the family does more
            than ``lm_head(ln_final(hidden))``; None means exactly that.
        attention: an `AttentionSpec` (where the post-softmax probabilities are);
            declaring it claims `Capability.ATTENTION_PROBABILITIES`.
        heads: a `HeadsSpec` (per-head queries, keys, values, head outputs);
            declaring it claims `Capability.HEADS`.
        moe: a `MoESpec` for mixture-of-experts families; claims `Capability.MOE`.
        layer_kinds: a `LayerKinds` for hybrid and recurrent families: each layer's kind
            (softmax attention, linear attention, state space, ...) read from the config, and
            where each kind keeps its token mixer and MLP; None: every layer is softmax attention.
        spans: standard sublayer -> `Span` where no single module is that sublayer.
        absent: standard module -> reason, where the family has no such module
            (no final norm in a post-norm model).
        residual: how layers add sublayer outputs to the residual stream (`Residual`).
        mutated_in_place: accessor name -> reason, where the family edits that value in
            place after producing it (Falcon's ``mlp_output += attention_output``); reads
            of it return a copy taken when it is produced, so what is read is its meaning.
        tiny_config: config keyword arguments for a tiny random-weight model shared
            by every claimed type (variants add to it), for offline conformance.
        variants: model type -> `Variant`: what that type changes.
        known_broken: conformance check name -> reason; such checks run as strict
            expected failures, so a fix that makes one pass is reported.
        not_padding_invariant: why left padding changes the real tokens' values in the plain
            HuggingFace model itself (a recurrence that ignores the mask, positions counted
            arange(seq) whatever the mask); None: the model is padding-invariant. Declared, the
            `padding_invariance` check proves instead that the served logits of the padded batch
            equal plain HF's bit for bit, that rows without padding still match each prompt alone,
            and that padding really does change a padded row.
        positions_from_inputs: True where the model counts its own positions from the input ids
            and mask (skipping pad tokens), so a trace passes no ``position_ids`` and the model
            gets exactly what plain HF's ``model(input_ids, attention_mask)`` gets; False: the
            trace passes left-padded rows ``position_ids = cumsum(mask) - 1``, as nnsight does.
        refuse: ``(config) -> reason`` for configs the adapter cannot serve; such a
            model is refused at load with the reason.
        priority: resolves a claim on the same model type by another adapter;
            the higher priority wins, equal priorities are a conflict.
        description: one line shown by ``nnrosetta adapters``.
        plugin: the distribution (or run-time plugin name) that registered it;
            filled in by the registry.
        model_type: the type this declaration was merged for (`for_type`); empty
            on the family declaration.
        unsupported: set by a type's `Variant`: the reason that type is refused at load.
        notes: one line for ``nnrosetta adapters`` (a variant's notes replace the family's).
    """

    name: str
    model_types: tuple[str, ...]
    rename: Mapping[str, str] = field(default_factory=dict)
    model_classes: tuple[str, ...] = ()
    config_keys: ConfigKeys = field(default_factory=ConfigKeys)
    final_projection: Optional[FinalProjection] = None
    attention: Optional[AttentionSpec] = None
    heads: Optional[HeadsSpec] = None
    moe: Optional[MoESpec] = None
    layer_kinds: Optional[LayerKinds] = None
    spans: Mapping[str, Span] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)
    residual: Residual = field(default_factory=Residual)
    mutated_in_place: Mapping[str, str] = field(default_factory=dict)
    tiny_config: Mapping[str, Any] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    known_broken: Mapping[str, str] = field(default_factory=dict)
    not_padding_invariant: Optional[str] = None
    positions_from_inputs: bool = False
    refuse: Optional[Refusal] = None
    priority: int = 0
    description: str = ""
    plugin: str = ""
    model_type: str = ""
    unsupported: Optional[str] = None
    notes: str = ""

    def __post_init__(self) -> None:
        # Freeze the mappings so a registered adapter cannot be changed under the registry.
        for name in ("rename", "spans", "absent", "mutated_in_place", "tiny_config", "variants", "known_broken"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "model_types", tuple(self.model_types))
        object.__setattr__(self, "model_classes", tuple(self.model_classes))

    # -- merged views ------------------------------------------------------------

    def for_type(self, model_type: Optional[str]) -> "Adapter":
        """This declaration with ``model_type``'s variant merged in (the family's alone if it has none)."""
        variant = self.variants.get(model_type or "")
        if variant is None:
            return dataclasses.replace(self, model_type=model_type or "", variants={})
        rename = {**self.rename, **variant.rename}
        changes: dict[str, Any] = {
            "rename": {path: name for path, name in rename.items() if name is not None},
            "config_keys": dataclasses.replace(self.config_keys, **dict(variant.config_keys)),
            "spans": {**self.spans, **variant.spans},
            "absent": {**self.absent, **variant.absent},
            "mutated_in_place": {**self.mutated_in_place, **variant.mutated_in_place},
            "tiny_config": {**self.tiny_config, **variant.tiny_config},
            "known_broken": {**self.known_broken, **variant.known_broken},
            "unsupported": variant.unsupported,
            "notes": variant.notes or self.notes,
            "variants": {},
            "model_type": model_type,
        }
        for name in ("final_projection", "attention", "heads", "moe", "residual", "layer_kinds",
                     "not_padding_invariant", "positions_from_inputs", "refuse"):
            value = getattr(variant, name)
            if value is not INHERIT:
                changes[name] = value if value is not None or name != "residual" else Residual()
        return dataclasses.replace(self, **changes)

    def has_tiny(self, model_type: str) -> bool:
        """Whether a tiny model of ``model_type`` can be built from this declaration."""
        merged = self.for_type(model_type)
        return model_type in self.model_types and merged.unsupported is None and bool(merged.tiny_config)

    def tiny_types(self) -> list[str]:
        """The claimed types a tiny model can be built for, in declaration order."""
        return [t for t in self.model_types if self.has_tiny(t)]

    def served_types(self) -> list[str]:
        """The claimed types that are served (not claimed only to be refused)."""
        return [t for t in self.model_types if self.for_type(t).unsupported is None]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Capabilities claimed, derived from the optional declarations present."""
        claimed = set()
        if self.final_projection is not None:
            claimed.add(Capability.FINAL_PROJECTION)
        if self.attention is not None:
            claimed.add(Capability.ATTENTION_PROBABILITIES)
        if self.heads is not None:
            claimed.add(Capability.HEADS)
        if self.moe is not None:
            claimed.add(Capability.MOE)
        return frozenset(claimed)

    def nnsight_rename(self) -> dict[str, str]:
        """The rename map in the form nnsight's ``rename=`` takes (identity entries dropped)."""
        return {path: name for path, name in self.rename.items() if path != name}

    def with_plugin(self, plugin: str) -> "Adapter":
        return dataclasses.replace(self, plugin=plugin)

    # -- validation --------------------------------------------------------------

    def validate(self, plugin: str, check_names: Optional[frozenset[str]] = None) -> None:
        """Refuse a malformed declaration, naming the plugin, the type and the field.

        ``check_names``: the conformance checks that `known_broken` may name (None: not checked).
        """
        self._validate_family(plugin)
        for model_type, variant in self.variants.items():
            if model_type not in self.model_types:
                _refuse(
                    plugin, self.name, "", "variants",
                    f"has a variant for {model_type!r}, which the adapter does not claim "
                    f"(claims: {', '.join(self.model_types)})",
                    "Add the type to model_types or remove its variant.",
                )
            if not isinstance(variant, Variant):
                _refuse(plugin, self.name, model_type, "variants", f"holds a {type(variant).__name__}",
                        "Declare each variant as nnrosetta.Variant(...).")
        for model_type in self.model_types:
            self.for_type(model_type)._validate_merged(plugin, check_names)

    def _validate_family(self, plugin: str) -> None:
        refuse = lambda field_name, problem, fix: _refuse(plugin, self.name, "", field_name, problem, fix)  # noqa: E731
        if not self.name or not isinstance(self.name, str):
            refuse("name", f"must be a non-empty string, got {self.name!r}", "Give the adapter a name.")
        if not self.model_types:
            refuse("model_types", "is empty", "Claim at least one HuggingFace config.model_type.")
        for model_type in self.model_types:
            if not isinstance(model_type, str) or not model_type:
                refuse("model_types", f"holds {model_type!r}", "Each entry must be a model_type string.")
        if len(set(self.model_types)) != len(self.model_types):
            refuse("model_types", "names a type twice", "List each model type once.")

    def _validate_merged(self, plugin: str, check_names: Optional[frozenset[str]]) -> None:
        refuse = lambda field_name, problem, fix: _refuse(plugin, self.name, self.model_type, field_name, problem, fix)  # noqa: E731
        for path, standard in self.rename.items():
            if standard not in STANDARD_MODULES:
                refuse("rename", f"maps {path!r} to unknown standard name {standard!r}",
                       f"Standard names are: {', '.join(STANDARD_MODULES)}.")
        if not isinstance(self.config_keys, ConfigKeys):
            refuse("config_keys", f"is a {type(self.config_keys).__name__}", "Declare it as nnrosetta.ConfigKeys(...).")
        for problem in self.config_keys.problems():
            refuse("config_keys", problem, "Fix the ConfigKeys declaration.")
        if self.final_projection is not None and not callable(self.final_projection):
            refuse("final_projection", "is not callable", "Pass a function (model, hidden) -> logits.")
        for field_name, spec_type in (("attention", AttentionSpec), ("heads", HeadsSpec), ("moe", MoESpec),
                                      ("residual", Residual), ("layer_kinds", LayerKinds)):
            spec = getattr(self, field_name)
            if spec is None:
                continue
            if not isinstance(spec, spec_type):
                refuse(field_name, f"is a {type(spec).__name__}", f"Declare it as nnrosetta.{spec_type.__name__}(...).")
            for problem in spec.problems():
                refuse(field_name, problem, f"Fix the {spec_type.__name__} declaration.")
        for name, span in self.spans.items():
            if name not in SPANNABLE_MODULES:
                refuse("spans", f"declares a span for {name!r}", f"Spans may stand for: {', '.join(SPANNABLE_MODULES)}.")
            if not isinstance(span, Span):
                refuse("spans", f"holds a {type(span).__name__} for {name!r}", "Declare it as nnrosetta.Span(start, end).")
            for problem in span.problems():
                refuse("spans", problem, "Fix the Span declaration.")
            if name in self.rename.values():
                refuse("spans", f"declares {name!r} a span and also renames a module to it", "Keep one of the two.")
        for name, reason in self.absent.items():
            if name not in ABSENTABLE_MODULES:
                refuse("absent", f"declares {name!r} absent", f"Only these may be absent: {', '.join(ABSENTABLE_MODULES)}.")
            if not isinstance(reason, str) or not reason:
                refuse("absent", f"gives no reason for {name!r}", "Say why the model has no such module.")
            if name in self.rename.values() or name in self.spans:
                refuse("absent", f"declares {name!r} absent and also maps a module or span to it", "Keep one.")
        for name, reason in self.mutated_in_place.items():
            if name not in ACTIVATION_ACCESSORS:
                refuse("mutated_in_place", f"names {name!r}", f"Name accessors: {', '.join(ACTIVATION_ACCESSORS)}.")
        for check_name, reason in self.known_broken.items():
            if check_names is not None and check_name not in check_names:
                refuse("known_broken", f"names {check_name!r}, which is no conformance check that can be "
                       f"declared broken", f"Use one of: {', '.join(sorted(check_names))}.")
            if not isinstance(reason, str) or not reason:
                refuse("known_broken", f"gives no reason for {check_name!r}", "Say why the check fails.")
        if self.not_padding_invariant is not None and (
            not isinstance(self.not_padding_invariant, str) or not self.not_padding_invariant
        ):
            refuse("not_padding_invariant", f"must be a reason string, got {self.not_padding_invariant!r}",
                   "Say why left padding changes the real tokens' values in the plain HuggingFace model.")
        if not isinstance(self.positions_from_inputs, bool):
            refuse("positions_from_inputs", f"must be True or False, got {self.positions_from_inputs!r}",
                   "Declare True where the model counts its own positions from the input ids, else leave it.")
        if self.not_padding_invariant is not None and "padding_invariance" in self.known_broken:
            refuse("not_padding_invariant", "is declared while known_broken also waives padding_invariance",
                   "Keep the declaration (the check then proves it) and remove the waiver.")
        for name in ("refuse",):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                refuse(name, "is not callable", "Pass a function (config) -> reason or None.")
        if self.unsupported is not None and (not isinstance(self.unsupported, str) or not self.unsupported):
            refuse("unsupported", "must be a reason string", "Say why the type cannot be served.")
        if not isinstance(self.tiny_config, Mapping):
            refuse("tiny_config", f"is a {type(self.tiny_config).__name__}", "Give config keyword arguments as a dict.")

    def refusal(self, config: Any) -> Optional[str]:
        """Why this (merged) declaration cannot serve a model with ``config``, or None."""
        if self.unsupported is not None:
            return self.unsupported
        return self.refuse(config) if self.refuse is not None else None


def _refuse(plugin: str, adapter: str, model_type: str, field_name: str, problem: str, fix: str) -> None:
    where = f", model type {model_type!r}" if model_type else ""
    raise InvalidAdapterError(f"plugin {plugin!r}, adapter {adapter!r}{where}: field `{field_name}` {problem}. {fix}")
