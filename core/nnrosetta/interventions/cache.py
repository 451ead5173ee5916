"""`run_with_cache`: one forward pass that keeps the activations asked for, by standard name.

Keys are ``<kind>.<layer>`` (``layers_output.3``, ``attentions_output.0``,
``mlps_input.1``, ``attention_probabilities.2``, ``routers_output.1``) plus
``token_embeddings`` and ``logits``.

Memory: only the names the filter keeps are saved; each is detached and, with
``to_cpu=True`` (the default), copied to the CPU as soon as the forward produces
it, so the accelerator holds no more than the forward itself needs. A kept
(batch, seq, hidden) tensor costs batch * seq * hidden * dtype bytes;
``attention_probabilities`` cost batch * heads * seq * seq each, which is why
they are kept only when asked for. ``ActivationCache.nbytes`` reports the total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, Optional, Union

import torch

from ..accessors import normalize_index
from ..errors import CapabilityError, InvalidInputError
from .inputs import Prompts, encode, prompt_list

if TYPE_CHECKING:
    from ..model import StandardizedTransformer

#: Per-layer kinds in the order a layer's forward produces them (accessors must be read in order).
LAYER_KINDS = (
    "layers_input",
    "attentions_input",
    "attention_probabilities",
    "attentions_output",
    "mlps_input",
    "routers_output",
    "mlps_output",
    "layers_output",
)
#: Kinds outside the layers: the first and last values of the forward.
FIRST, LAST = "token_embeddings", "logits"
#: What ``names=None`` keeps: every layer's residual, attention and MLP outputs, embeddings and logits.
DEFAULT_KINDS = (FIRST, "attentions_output", "mlps_output", "layers_output", LAST)
#: Kinds that need a capability, with the model attribute that serves them.
OPTIONAL_KINDS = {"attention_probabilities": "attention_probabilities", "routers_output": "routers_output"}

NameFilter = Union[str, Iterable[str], Callable[[str], bool], None]


class ActivationCache(Mapping[str, torch.Tensor]):
    """Activations keyed by standard name; ``cache["layers_output", -1]`` and ``cache.stack(kind)`` too."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], num_layers: int) -> None:
        self._tensors = dict(tensors)
        self._num_layers = num_layers

    def _key(self, key: Union[str, tuple[str, int]]) -> str:
        if isinstance(key, tuple):
            kind, layer = key
            return f"{kind}.{normalize_index(layer, self._num_layers, 'layer', 'num_layers')}"
        return key

    def __getitem__(self, key: Union[str, tuple[str, int]]) -> torch.Tensor:
        name = self._key(key)
        if name not in self._tensors:
            raise KeyError(
                f"{name!r} is not in this cache; it holds {', '.join(self._tensors) or 'nothing'}. "
                f"Ask run_with_cache for it with names=[{name!r}]."
            )
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def layers(self, kind: str) -> list[int]:
        """Layer indices cached for ``kind``, in forward order."""
        prefix = f"{kind}."
        return sorted(int(name[len(prefix) :]) for name in self._tensors if name.startswith(prefix))

    def stack(self, kind: str) -> torch.Tensor:
        """Every cached layer of ``kind`` stacked on a new first dimension (layers, ...)."""
        layers = self.layers(kind)
        if not layers:
            raise KeyError(f"no {kind!r} activations in this cache; ask run_with_cache for names=[{kind!r}].")
        return torch.stack([self._tensors[f"{kind}.{layer}"] for layer in layers])

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(t.numel() * t.element_size() for t in self._tensors.values())

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} tensors, {self.nbytes / 2**20:.2f} MiB: {', '.join(self._tensors)})"


def _refusal(model: "StandardizedTransformer", kind: str) -> Optional[CapabilityError]:
    """Why this model cannot serve ``kind`` (an error to raise), or None when it can."""
    attribute = OPTIONAL_KINDS.get(kind)
    if attribute is None:
        return None
    if not hasattr(type(model), attribute):
        return CapabilityError(
            f"{kind!r} cannot be cached: this {type(model).__name__} has no `{attribute}`; "
            f"upgrade nnrosetta to a version that serves it."
        )
    if kind == "routers_output" and getattr(model.adapter, "moe", None) is None:
        return CapabilityError(
            f"routers_output cannot be cached: adapter {model.adapter.name!r} declares no mixture-of-experts "
            f"spec, so this model has no routers; drop 'routers_output' from names."
        )
    if kind == "attention_probabilities":
        from ..attention import attention_spec

        try:
            attention_spec(model, "run_with_cache(names=['attention_probabilities'])")
        except CapabilityError as error:
            return error
    return None


def _available_kinds(model: "StandardizedTransformer") -> list[str]:
    return [kind for kind in LAYER_KINDS if _refusal(model, kind) is None]


def _all_names(model: "StandardizedTransformer", kinds: list[str]) -> list[str]:
    """Every possible key in forward order."""
    return [FIRST] + [f"{kind}.{layer}" for layer in range(model.num_layers) for kind in kinds] + [LAST]


def _select(model: "StandardizedTransformer", names: NameFilter) -> list[str]:
    """The keys to keep, in forward order, or a clear error for an unknown or unservable name."""
    kinds = _available_kinds(model)
    every = _all_names(model, kinds)
    if callable(names):
        kept = [name for name in every if names(name)]
        if not kept:
            raise InvalidInputError(f"the names filter keeps none of {len(every)} names (e.g. {every[1]!r}).")
        return kept
    requested = list(DEFAULT_KINDS) if names is None else [names] if isinstance(names, str) else list(names)
    if not requested:
        raise InvalidInputError("names=[] keeps nothing; pass None for the default set or the names to keep.")
    wanted: set[str] = set()
    for name in requested:
        kind, _, layer = name.partition(".")
        if kind in (FIRST, LAST) and not layer:
            wanted.add(kind)
            continue
        if kind not in LAYER_KINDS:
            raise InvalidInputError(
                f"{name!r} is not a cacheable name; use {FIRST!r}, {LAST!r}, or '<kind>' / '<kind>.<layer>' "
                f"with kind one of {', '.join(LAYER_KINDS)}."
            )
        refusal = _refusal(model, kind)
        if refusal is not None:
            raise refusal
        if layer:
            try:
                index = int(layer)
            except ValueError:
                raise InvalidInputError(f"{name!r}: the part after the dot must be a layer number.") from None
            wanted.add(f"{kind}.{normalize_index(index, model.num_layers, 'layer', 'num_layers')}")
        else:
            wanted.update(f"{kind}.{i}" for i in range(model.num_layers))
    return [name for name in every if name in wanted]


def _read(model: "StandardizedTransformer", name: str) -> torch.Tensor:
    if name == FIRST:
        return model.token_embeddings
    if name == LAST:
        return model.logits
    kind, _, layer = name.partition(".")
    return getattr(model, kind)[int(layer)]


def run_with_cache(
    model: "StandardizedTransformer",
    prompts: Prompts,
    names: NameFilter = None,
    to_cpu: bool = True,
    remote: bool = False,
) -> ActivationCache:
    """Run the prompts once and keep the activations ``names`` selects.

    Args:
        names: None (token embeddings, every layer's attention, MLP and layer outputs,
            logits); a name or list of names, each a full key (``"layers_output.3"``) or a
            kind for every layer (``"mlps_input"``); or a predicate on full keys.
        to_cpu: copy each kept tensor to the CPU as it is produced.
        remote: passed to nnsight's trace.
    """
    selected = _select(model, names)
    encoding = encode(model, prompt_list(prompts))
    kept: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(encoding, remote=remote):
        for name in selected:
            value = _read(model, name).detach()
            kept.append((value.cpu() if to_cpu else value).save())
    return ActivationCache(dict(zip(selected, kept)), model.num_layers)
