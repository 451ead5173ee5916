"""nnterp's ``StandardizedTransformer``: nnrosetta's, with nnterp's load keywords and spellings.

Everything nnrosetta's class does is inherited. On top, for code written for
nnterp: the load keywords (``rename_config``, the ``*_rename`` names,
``check_renaming``, ``trust_remote_code``...), ``model.model.<standard name>``
(nnterp puts the backbone under ``model`` in every family), ``input_size``,
``next_token_probs_unsqueeze``, ``steer(positions=...)`` and
``skip_layers(start_layer, end_layer)``.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence, Union

import torch
from nnsight.intervention.envoy import Envoy

from ..errors import CapabilityError, NnrosettaError, UnsupportedArchitectureError
from ..interventions.hf_modules import rename_adapter
from ..loading import class_names, read_config
from ..model import StandardizedTransformer as _StandardizedTransformer
from ..registry import default_registry
from .rename_utils import RenameConfig, config_sizes, get_rename_dict, replace_rename

#: nnterp's older per-module keywords, and the `RenameConfig` field each one sets.
RENAME_KEYWORDS = {
    "attn_rename": "attn_name",
    "mlp_rename": "mlp_name",
    "ln_final_rename": "ln_final_name",
    "lm_head_rename": "lm_head_name",
    "model_rename": "model_name",
    "layers_rename": "layers_name",
}
#: Standard modules that nnterp code also reaches under the backbone, ``model.model.<name>``.
BACKBONE_NAMES = ("embed_tokens", "layers", "ln_final")

Indices = Union[int, Sequence[int], slice, torch.Tensor, None]


def merged_rename_config(rename_config: Optional[RenameConfig], keywords: dict[str, Any]) -> Optional[RenameConfig]:
    """One `RenameConfig` from ``rename_config`` and the ``*_rename`` keywords (the keywords win)."""
    given = {RENAME_KEYWORDS[k]: v for k, v in keywords.items() if v is not None}
    if rename_config is None and not given:
        return None
    if rename_config is not None and not isinstance(rename_config, RenameConfig):
        raise NnrosettaError(
            f"rename_config must be a nnrosetta.nnterp.RenameConfig, got {type(rename_config).__name__}."
        )
    merged = RenameConfig(**{**(vars(rename_config) if rename_config else {}), **given})
    problems = merged.refusals()
    if problems:
        raise NnrosettaError("this RenameConfig cannot be served: " + "; ".join(problems) + ".")
    return merged


class StandardizedTransformer(_StandardizedTransformer):
    """nnrosetta's `StandardizedTransformer` under nnterp's constructor and spellings.

    Args:
        model: a hub id, a folder written by ``save_pretrained``, or a loaded model.
        trust_remote_code: passed to HuggingFace.
        check_renaming: run nnrosetta's structure and shape checks at load (``check=``).
        allow_dispatch, check_attn_probs_with_trace: accepted for nnterp code; nnrosetta
            always dispatches a hub id or folder at load and checks attention
            probabilities in its conformance suite (``nnrosetta check``), not at load.
        rename_config: a `RenameConfig`; its entries replace the adapter's for the same
            standard names, and serve a model that no installed adapter claims.
        enable_attention_probs: load with eager attention so ``attention_probabilities``
            can be read and edited.
        attn_rename, mlp_rename, ln_final_rename, lm_head_rename, model_rename,
            layers_rename: nnterp's older spelling of the `RenameConfig` fields.
        **kwargs: nnrosetta's own keywords (``adapter``, ``tokenizer``, ``registry``...)
            and those of nnsight and HuggingFace.
    """

    def __init__(
        self,
        model: Any,
        *,
        trust_remote_code: bool = False,
        check_renaming: bool = True,
        allow_dispatch: bool = True,
        check_attn_probs_with_trace: bool = True,
        rename_config: Optional[RenameConfig] = None,
        enable_attention_probs: bool = False,
        attn_rename: Any = None,
        mlp_rename: Any = None,
        ln_final_rename: Any = None,
        lm_head_rename: Any = None,
        model_rename: Any = None,
        layers_rename: Any = None,
        **kwargs: Any,
    ) -> None:
        keywords = dict(
            attn_rename=attn_rename, mlp_rename=mlp_rename, ln_final_rename=ln_final_rename,
            lm_head_rename=lm_head_rename, model_rename=model_rename, layers_rename=layers_rename,
        )
        config = merged_rename_config(rename_config, keywords)
        if trust_remote_code:
            kwargs["trust_remote_code"] = True
        kwargs.setdefault("check", check_renaming)
        numbers: dict[str, int] = {}
        if config is not None:
            kwargs["adapter"], numbers = _adapter_with_renames(model, config, kwargs)
        object.__setattr__(self, "_sizes_given", numbers)
        super().__init__(model, enable_attention_probs=enable_attention_probs, **kwargs)
        self._mount_backbone()

    # -- model.model.<standard name> -------------------------------------------

    def _mount_backbone(self) -> None:
        """Bind ``model`` (the backbone holding the layers) and the standard names under it, as nnterp has them."""
        backbone = self.__dict__.get("model")
        if not isinstance(backbone, Envoy):
            backbone = self.layers.parent
            if backbone is None or backbone is self or hasattr(self._module, "model"):
                return
            object.__setattr__(self, "model", backbone)
            self._aliases["model"] = backbone.path.split(".", 1)[-1]
        for name in BACKBONE_NAMES:
            try:
                target = getattr(self, name)
            except (AttributeError, CapabilityError):
                continue
            if not isinstance(target, Envoy) or backbone.__dict__.get(name) is target:
                continue
            if name in backbone.__dict__ or hasattr(backbone._module, name):
                continue  # never shadow a module or attribute the backbone has under that name
            object.__setattr__(backbone, name, target)
            backbone._aliases[name] = target.path[len(backbone.path) + 1 :] if target.path.startswith(backbone.path + ".") else target.path

    # -- sizes given as numbers in a RenameConfig ------------------------------

    @property
    def num_heads(self) -> int:
        """Number of attention (query) heads."""
        given = self.__dict__.get("_sizes_given", {}).get("num_heads")
        return given if given is not None else super().num_heads

    @property
    def hidden_size(self) -> int:
        """Width of the residual stream."""
        given = self.__dict__.get("_sizes_given", {}).get("hidden_size")
        return given if given is not None else super().hidden_size

    # -- values inside a trace -------------------------------------------------

    @property
    def input_size(self) -> torch.Size:
        """Inside a trace: the shape of the input ids, (batch, seq)."""
        return self.input_ids.shape

    @property
    def next_token_probs_unsqueeze(self) -> torch.Tensor:
        """Inside a trace: `next_token_probs` with a position dimension, (batch, 1, vocab)."""
        return self.next_token_probs.unsqueeze(1)

    # -- interventions, with nnterp's argument names ---------------------------

    def steer(
        self,
        layers: Union[int, Sequence[int]],
        steering_vector: torch.Tensor,
        factor: float = 1,
        token_positions: Indices = None,
        batch_index: Indices = None,
        *,
        positions: Indices = None,
    ) -> None:
        """nnrosetta's `steer`; ``positions`` is the deprecated name of ``token_positions``."""
        if positions is not None:
            if token_positions is not None:
                raise NnrosettaError("steer() got both positions and token_positions; pass token_positions only.")
            warnings.warn(
                "steer(positions=...) is deprecated; use steer(token_positions=...).", DeprecationWarning, stacklevel=2
            )
            token_positions = positions
        super().steer(
            layers, steering_vector, factor=factor,
            token_positions=_plain_index(token_positions), batch_index=_plain_index(batch_index),
        )

    def skip_layers(self, start_layer: int, end_layer: int, skip_with: Optional[torch.Tensor] = None) -> None:
        """Inside a trace, skip layers ``start_layer..end_layer`` (inclusive): their output is their input."""
        super().skip_layers(start_layer, end_layer, skip_with)


def _plain_index(selection: Indices) -> Any:
    """A tensor of positions as a list (nnrosetta indexes with ints, lists and slices)."""
    if isinstance(selection, torch.Tensor):
        return selection.tolist()
    return selection


def _adapter_with_renames(model: Any, config: RenameConfig, kwargs: dict) -> tuple[Any, dict[str, int]]:
    """The adapter to load with: the resolved one (or an empty one) with the renames in place, and sizes given as numbers."""
    registry = kwargs.get("registry") or default_registry()
    hf_config = read_config(model, kwargs)
    model_type = getattr(hf_config, "model_type", None)
    try:
        adapter = registry.resolve(model_type, class_names(model, hf_config), kwargs.get("adapter"), hf_config)
    except UnsupportedArchitectureError:
        adapter = rename_adapter(model_type)
    keys, numbers = config_sizes(config, hf_config)
    return replace_rename(adapter, get_rename_dict(config), keys), numbers
