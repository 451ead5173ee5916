"""The standard modules of a bare HuggingFace model, by standard name, with no tracing.

Plain PyTorch code (forward hooks, weight surgery, parameter counting) wants
``layers[i].self_attn`` or ``ln_final`` without wrapping the model in nnsight.
`StandardModules` resolves the same rename map the installed adapter declares
for the model's family and returns the torch modules themselves.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Union

import torch

from ..accessors import normalize_index
from ..adapter import Adapter
from ..errors import CapabilityError, NnrosettaError, RenamingError, UnsupportedArchitectureError
from ..registry import Registry, default_registry

ROOT_NAMES = ("embed_tokens", "layers", "ln_final", "lm_head")
LAYER_NAMES = ("self_attn", "mlp")


def walk(module: torch.nn.Module, path: str) -> list[torch.nn.Module]:
    """The modules ``path`` names under ``module``; a ``*`` component stands for any child."""
    found: list[Any] = [module]
    for part in path.split("."):
        step: list[Any] = []
        for current in found:
            if part == "*":
                step.extend(child for child in current.children())
            elif isinstance(getattr(current, part, None), torch.nn.Module):
                step.append(getattr(current, part))
        found = step
    unique = {id(m): m for m in found}
    return list(unique.values())


def rename_adapter(model_type: Optional[str]) -> Adapter:
    """An adapter with no entries of its own, for a model no plugin claims, named by run-time renames."""
    return Adapter(
        name="rename",
        model_types=(model_type or "unknown",),
        description="built at run time from rename entries given at load",
    )


class StandardModules:
    """``StandardModules(hf_model).layers[3].self_attn``, ``.ln_final``, ... as plain torch modules.

    Args:
        model: a HuggingFace causal LM (``PreTrainedModel``), not wrapped.
        adapter: an `Adapter` or adapter name; default the one the registry resolves.
        rename: extra ``family path -> standard name`` entries; they replace the
            adapter's entries for the standard names they give, and serve a model
            no installed adapter claims.
        registry: where adapters are resolved (default the process-wide registry).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        adapter: Union[Adapter, str, None] = None,
        rename: Optional[Mapping[str, str]] = None,
        registry: Optional[Registry] = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise NnrosettaError(
                f"StandardModules takes a loaded torch model, got {type(model).__name__}; load it with "
                f"AutoModelForCausalLM.from_pretrained(...) first."
            )
        config = getattr(model, "config", None)
        classes = [type(model).__name__] + list(getattr(config, "architectures", None) or [])
        registry = registry or default_registry()
        self.model = model
        overrides = dict(rename or {})
        try:
            self.adapter = registry.resolve(getattr(config, "model_type", None), classes, adapter, config)
        except UnsupportedArchitectureError:
            if not overrides:
                raise
            self.adapter = rename_adapter(getattr(config, "model_type", None))
        replaced = set(overrides.values())
        self._paths: dict[str, list[str]] = {name: [] for name in ROOT_NAMES + LAYER_NAMES}
        for path, name in [*((p, n) for p, n in self.adapter.rename.items() if n not in replaced), *overrides.items()]:
            self._paths.setdefault(name, []).append(path)

    def _resolve(self, root: torch.nn.Module, name: str, where: str) -> torch.nn.Module:
        for container, what in (("absent", "absent from"), ("spans", "a span of several modules in")):
            if name in (getattr(self.adapter, container, None) or {}):
                raise CapabilityError(
                    f"`{name}` is {what} this model (adapter {self.adapter.name!r}), so there is no single "
                    f"module to return; use StandardizedTransformer, which serves it."
                )
        candidates = self._paths.get(name) or [name]
        for path in candidates:
            found = walk(root, path)
            if len(found) == 1:
                return found[0]
        raise RenamingError(
            f"`{name}` does not resolve on {where} ({type(root).__name__}): tried {', '.join(candidates)} "
            f"(adapter {self.adapter.name!r}); its children are "
            f"{', '.join(n for n, _ in root.named_children()) or '(none)'}. Pass rename={{'<path>': {name!r}}}."
        )

    @property
    def embed_tokens(self) -> torch.nn.Module:
        return self._resolve(self.model, "embed_tokens", "the model")

    @property
    def layers(self) -> torch.nn.ModuleList:
        return self._resolve(self.model, "layers", "the model")

    @property
    def ln_final(self) -> torch.nn.Module:
        return self._resolve(self.model, "ln_final", "the model")

    @property
    def lm_head(self) -> torch.nn.Module:
        return self._resolve(self.model, "lm_head", "the model")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, layer: int) -> torch.nn.Module:
        return self.layers[normalize_index(layer, self.num_layers, "layer", "num_layers")]

    def get_attention(self, layer: int) -> torch.nn.Module:
        return self._resolve(self.get_layer(layer), "self_attn", f"layer {layer}")

    def get_mlp(self, layer: int) -> torch.nn.Module:
        return self._resolve(self.get_layer(layer), "mlp", f"layer {layer}")

    @property
    def attentions(self) -> list[torch.nn.Module]:
        return [self.get_attention(i) for i in range(self.num_layers)]

    @property
    def mlps(self) -> list[torch.nn.Module]:
        return [self.get_mlp(i) for i in range(self.num_layers)]

    def __iter__(self) -> Iterator[torch.nn.Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return self.num_layers

    def __repr__(self) -> str:
        return f"StandardModules({type(self.model).__name__}, adapter={self.adapter.name!r}, num_layers={self.num_layers})"
