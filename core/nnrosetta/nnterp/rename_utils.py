"""nnterp's ``rename_utils``: describing a module tree by its names, and the standard names over a bare model.

nnrosetta keeps one rename map per family in its adapters; `RenameConfig` is
how nnterp code states, at load, where a model keeps its modules when that
differs (a custom wrapper, a family no plugin claims). `get_rename_dict` gives
the ``family path -> standard name`` entries it stands for, which
`StandardizedTransformer` puts in place of the adapter's entries for the same
standard names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch

from ..errors import NnrosettaError, RenamingError
from ..interventions.hf_modules import StandardModules

Names = Union[str, Sequence[str], None]
ConfigValue = Union[str, Sequence[str], int, None]

__all__ = ["ModuleAccessor", "RenameConfig", "RenamingError", "get_rename_dict"]


@dataclass
class RenameConfig:
    """Where a model keeps the standard modules, by name (each field: a name, a list of candidates, or None).

    ``model_name`` is the backbone holding the layers (``"transformer"`` in GPT-2);
    ``layers_name``, ``ln_final_name`` and ``embed_tokens_name`` are looked up under
    it (a dotted name is a path from the top model; with no ``model_name``, under any
    child of the top model); ``lm_head_name`` is on the top model; ``attn_name`` and
    ``mlp_name`` inside each layer. ``attn_head_config_key`` and
    ``hidden_size_config_key`` name the config keys for the head count and width
    (the first one the config has, for a list) or give the number itself (an int).

    nnrosetta serves attention probabilities, absent MLPs or attentions and tuple
    outputs through adapters, so ``attn_prob_source``, ``ignore_mlp`` and
    ``ignore_attn`` are refused at load with what to do instead, and
    ``mlp_returns_tuple`` is not needed (tuples are unwrapped whatever the family returns).
    ``embed_tokens_name`` is nnrosetta's addition.
    """

    attn_prob_source: Any = None
    ignore_mlp: Optional[bool] = None
    ignore_attn: Optional[bool] = None
    attn_name: Names = None
    mlp_name: Names = None
    ln_final_name: Names = None
    lm_head_name: Names = None
    model_name: Names = None
    layers_name: Names = None
    mlp_returns_tuple: Optional[bool] = None
    attn_head_config_key: ConfigValue = None
    hidden_size_config_key: ConfigValue = None
    embed_tokens_name: Names = None

    def refusals(self) -> list[str]:
        """Why this config cannot be served as given (empty when it can)."""
        problems = []
        if self.attn_prob_source is not None:
            problems.append(
                "attn_prob_source: nnrosetta finds attention probabilities through the adapter's "
                "AttentionSpec; declare one in an Adapter (see the README, 'Writing an adapter')"
            )
        for name, module in (("ignore_mlp", "mlp"), ("ignore_attn", "self_attn")):
            if getattr(self, name):
                problems.append(
                    f"{name}: a layer without {module} needs an adapter that declares it absent "
                    f"(Adapter(absent={{{module!r}: 'why'}})), passed as adapter=..."
                )
        return problems


def _names(value: Names) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def get_rename_dict(rename_config: Optional[RenameConfig] = None) -> dict[str, str]:
    """The ``family path -> standard name`` entries a `RenameConfig` stands for (nnsight ``rename=`` form)."""
    config = rename_config or RenameConfig()
    backbones = _names(config.model_name)

    def under_backbone(name: str) -> list[str]:
        if "." in name:
            return [name]
        return [f"{backbone}.{name}" for backbone in backbones] or [f"*.{name}"]

    entries: dict[str, str] = {}
    for field_name, standard in (("embed_tokens_name", "embed_tokens"), ("layers_name", "layers"), ("ln_final_name", "ln_final")):
        for name in _names(getattr(config, field_name)):
            entries.update((path, standard) for path in under_backbone(name))
    for field_name, standard in (("lm_head_name", "lm_head"), ("attn_name", "self_attn"), ("mlp_name", "mlp")):
        entries.update((name, standard) for name in _names(getattr(config, field_name)))
    return entries


def config_sizes(rename_config: Optional[RenameConfig], hf_config: Any) -> tuple[dict[str, str], dict[str, int]]:
    """(ConfigKeys fields to replace, sizes given as numbers) from the config-key fields of a `RenameConfig`."""
    keys: dict[str, str] = {}
    numbers: dict[str, int] = {}
    if rename_config is None:
        return keys, numbers
    for field_name, size in (("attn_head_config_key", "num_heads"), ("hidden_size_config_key", "hidden_size")):
        value = getattr(rename_config, field_name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            numbers[size] = value
            continue
        candidates = _names(value)
        present = [key for key in candidates if getattr(hf_config, key, None) is not None]
        if not present:
            raise NnrosettaError(
                f"RenameConfig.{field_name}={value!r}: the model config has none of these keys; "
                f"name a key the config has or give the number itself."
            )
        keys[size] = present[0]
    return keys, numbers


class ModuleAccessor(StandardModules):
    """nnterp's ``ModuleAccessor``: the standard modules of a bare HuggingFace model, no tracing.

    ``ModuleAccessor(hf_model).get_layer(3)``, ``.get_attention(3)``, ``.ln_final``;
    ``rename_config`` says where a model keeps them when its family's adapter does not.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        rename_config: Optional[RenameConfig] = None,
        adapter: Any = None,
        registry: Any = None,
    ) -> None:
        super().__init__(model, adapter=adapter, rename=get_rename_dict(rename_config), registry=registry)

    def get_layers(self) -> torch.nn.ModuleList:
        return self.layers

    def get_ln_final(self) -> torch.nn.Module:
        return self.ln_final

    def get_lm_head(self) -> torch.nn.Module:
        return self.lm_head

    def get_embed_tokens(self) -> torch.nn.Module:
        return self.embed_tokens


def replace_rename(adapter: Any, entries: dict[str, str], config_keys: dict[str, str]) -> Any:
    """``adapter`` with ``entries`` in place of its entries for the same standard names."""
    replaced = set(entries.values())
    rename = {path: name for path, name in adapter.rename.items() if name not in replaced}
    rename.update(entries)
    return dataclasses.replace(
        adapter, rename=rename, config_keys=dataclasses.replace(adapter.config_keys, **config_keys)
    )
