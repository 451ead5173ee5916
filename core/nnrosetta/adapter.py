"""`Adapter`: a plugin's declaration of how one architecture family is served.

An adapter is data first: which HuggingFace model types it claims, how the
family's module paths map to the standard names, which config keys hold the
sizes, and tiny configs for offline conformance. Callables appear only where
data cannot say it (the final projection to logits, say).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from .attention_spec import AttentionSpec, HeadsSpec
from .capabilities import Capability
from .errors import InvalidAdapterError
from .moe import MoESpec

if TYPE_CHECKING:
    import torch

    from .model import StandardizedTransformer

#: Standard module names a rename map may target, and where each lives.
ROOT_MODULES = ("embed_tokens", "layers", "ln_final", "lm_head")
LAYER_MODULES = ("self_attn", "mlp")
STANDARD_MODULES = ROOT_MODULES + LAYER_MODULES

FinalProjection = Callable[["StandardizedTransformer", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class ConfigKeys:
    """Names of the HuggingFace config attributes that hold the model's sizes.

    `num_kv_heads` and `head_dim` may be None when the family has no such key;
    the core then falls back to `num_heads` and `hidden_size // num_heads`.
    """

    num_layers: str = "num_hidden_layers"
    num_heads: str = "num_attention_heads"
    num_kv_heads: Optional[str] = "num_key_value_heads"
    head_dim: Optional[str] = "head_dim"
    hidden_size: str = "hidden_size"
    vocab_size: str = "vocab_size"


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
        attention: an `AttentionSpec` naming the `.source` labels where the family's
            attention forward holds its post-softmax probabilities. Declaring it
            claims `Capability.ATTENTION_PROBABILITIES`.
        heads: a `HeadsSpec` naming where the per-head queries, keys and values, the
            call to the attention function and the output projection are. Declaring
            it claims `Capability.HEADS`.
        moe: a `MoESpec` (router and experts paths inside ``mlp``, what the router
            returns, expert-count config keys) for mixture-of-experts families;
            None for dense ones. Declaring it claims `Capability.MOE`.
        tiny_configs: model type -> config keyword arguments for a tiny
            random-weight model, used for offline conformance runs.
        known_broken: conformance check name -> reason; such checks run as strict
            expected failures, so a fix that makes one pass is reported.
        priority: resolves a claim on the same model type by another adapter;
            the higher priority wins, equal priorities are a conflict.
        description: one line shown by ``nnrosetta adapters``.
        plugin: the distribution (or run-time plugin name) that registered it;
            filled in by the registry.
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
    tiny_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    known_broken: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    description: str = ""
    plugin: str = ""

    def __post_init__(self) -> None:
        # Freeze the mappings so a registered adapter cannot be changed under the registry.
        for name in ("rename", "tiny_configs", "known_broken"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "model_types", tuple(self.model_types))
        object.__setattr__(self, "model_classes", tuple(self.model_classes))

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

    def validate(self, plugin: str) -> None:
        """Refuse a malformed declaration, naming the plugin and the field."""

        def refuse(field_name: str, problem: str, fix: str) -> None:
            raise InvalidAdapterError(
                f"plugin {plugin!r}, adapter {self.name!r}: field `{field_name}` {problem}. {fix}"
            )

        if not self.name or not isinstance(self.name, str):
            refuse("name", f"must be a non-empty string, got {self.name!r}", "Give the adapter a name.")
        if not self.model_types:
            refuse("model_types", "is empty", "Claim at least one HuggingFace config.model_type.")
        for model_type in self.model_types:
            if not isinstance(model_type, str) or not model_type:
                refuse("model_types", f"holds {model_type!r}", "Each entry must be a model_type string.")
        for path, standard in self.rename.items():
            if standard not in STANDARD_MODULES:
                refuse(
                    "rename",
                    f"maps {path!r} to unknown standard name {standard!r}",
                    f"Standard names are: {', '.join(STANDARD_MODULES)}.",
                )
        for model_type in self.tiny_configs:
            if model_type not in self.model_types:
                refuse(
                    "tiny_configs",
                    f"has a config for {model_type!r}, which the adapter does not claim "
                    f"(claims: {', '.join(self.model_types)})",
                    "Add the type to model_types or remove its tiny config.",
                )
        if self.final_projection is not None and not callable(self.final_projection):
            refuse("final_projection", "is not callable", "Pass a function (model, hidden) -> logits.")
        for field_name, spec_type in (("attention", AttentionSpec), ("heads", HeadsSpec)):
            spec = getattr(self, field_name)
            if spec is None:
                continue
            if not isinstance(spec, spec_type):
                refuse(field_name, f"is a {type(spec).__name__}", f"Declare it as nnrosetta.{spec_type.__name__}(...).")
            for problem in spec.problems():
                refuse(field_name, problem, f"Fix the {spec_type.__name__} declaration.")
        if self.moe is not None:
            if not isinstance(self.moe, MoESpec):
                refuse("moe", f"is a {type(self.moe).__name__}", "Declare it as nnrosetta.MoESpec(...).")
            for problem in self.moe.problems():
                refuse("moe", problem, "Fix the MoESpec declaration.")
