"""Mixture-of-experts: the adapter's declaration (`MoESpec`) and the interface the core serves.

A family's MoE block is declared as data: where its router and experts sit
inside the layer's ``mlp``, what the router module returns, and which config keys
hold the expert counts. From that alone the core serves, for any MoE adapter,
``routers_output[i]`` (router logits as (batch, seq, num_experts)),
``router_top_k[i]`` (the chosen experts and their weights, readable and
writable), ``ablate_experts(layer, experts)`` and, where the family has one,
``shared_experts_output[i]``. The router is intervened on at its output (or, where
it returns the top-k regrouped or rewritten, at the points of its forward where the
choice is whole), so the family's own expert code computes the result and nothing
is re-implemented.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence, Union

import torch

from .accessors import normalize_index
from .errors import (
    AccessorAssignmentError,
    CapabilityError,
    InvalidAdapterError,
    LayerIndexError,
    ShapeError,
    UnsupportedArchitectureError,
)
from .points import describe
from .source_points import position, reach, verify_first_level
from .specs import MoESpec

if TYPE_CHECKING:
    from nnsight.intervention.envoy import Envoy

    from .source_points import Reached

class TopK(NamedTuple):
    """The experts each token is sent to and the weights of their outputs, both (batch, seq, k)."""

    indices: torch.Tensor
    weights: torch.Tensor


def _child(envoy: "Envoy", path: str) -> "Envoy":
    """The child at a dotted path; ``""`` is ``envoy`` itself (a block holding its experts' weights)."""
    return functools.reduce(getattr, path.split("."), envoy) if path else envoy


def _has_path(module: torch.nn.Module, path: str) -> bool:
    try:
        _child(module, path)
    except AttributeError:
        return False
    return True


class _LayerView:
    """Shared plumbing of the layer-indexed MoE views: index checks and the layer's MoE modules."""

    name = ""

    def __init__(self, model: "MixtureOfExpertsInterface") -> None:
        self._model = model

    def __len__(self) -> int:
        return self._model.num_layers

    def _layer(self, index: int) -> int:
        return self._model._moe_layer(index, self.name)

    def _mlp(self, layer: int) -> "Envoy":
        return self._model.layers[layer].mlp

    def _batch_seq(self, layer: int) -> tuple[int, int]:
        # Valid once a tensor inside the block has been received: the block has been entered.
        return self._model._moe_block_shapes[layer]

    def _router_output(self, layer: int) -> tuple:
        return _child(self._mlp(layer), self._model._moe_spec(self.name).router).output


class RouterLogits(_LayerView):
    """``routers_output[i]``: router logits of layer i as (batch, seq, num_experts)."""

    name = "routers_output"

    def __getitem__(self, index: int) -> torch.Tensor:
        layer = self._layer(index)
        spec = self._model._moe_spec(self.name)
        output = self._router_output(layer)
        logits = output if spec.bare_logits else output[spec.position("logits")]
        batch, seq = self._batch_seq(layer)
        return logits.reshape(batch, seq, logits.shape[-1])

    def __setitem__(self, index: int, value: Any) -> None:
        raise AccessorAssignmentError(
            f"routers_output[{index}] is read-only: the family routes with the top-k choice, not the "
            f"logits, so writing logits would change nothing. To change the routing, write "
            f"`model.router_top_k[{index}] = (indices, weights)` or call `model.ablate_experts({index}, experts)`."
        )


class _TopKSite:
    """Where a layer's top-k lives, read and written in the family's own form.

    Four forms: weights and indices in the router's output tuple; a dense
    (tokens, num_experts) weight matrix in it (zero off the chosen experts); the
    experts module's call arguments (`MoESpec.top_k_at_experts`); or points inside
    the router's forward (`MoESpec.top_k_in_router`), read in forward order and
    written, after both reads, at the declared points or at the router's output.
    Values are handed over reshaped to the shape each place holds.
    """

    def __init__(self, view: "_LayerView", layer: int) -> None:
        self._view = view
        self._spec = view._model._moe_spec(view.name)
        self._layer = layer

    def _envoy(self) -> "Envoy":
        """The experts module where the top-k is at its call, else the router."""
        path = self._spec.experts if self._spec.top_k_at_experts else self._spec.router
        return _child(self._view._mlp(self._layer), path)

    def _in_router(self, points: Sequence[tuple[str, Any]]) -> list[tuple[str, "Reached"]]:
        """The router's points, as reached operations, in the order the forward runs them."""
        router, adapter = self._envoy(), self._view._model.adapter
        ordered = sorted(enumerate(points), key=lambda item: (position(router, item[1][1]), item[0]))
        return [(part, reach(router, point, adapter, f"moe.top_k_in_router.{part}")) for _, (part, point) in ordered]

    def enter(self) -> None:
        """Wait until the forward reaches the first place a write goes (the block has then been entered)."""
        inside = self._spec.top_k_in_router
        if inside is not None and inside.written:
            self._in_router(inside.written)[0][1].value
        elif self._spec.top_k_at_experts:
            self._envoy().inputs
        else:
            self._envoy().output

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ``(indices, weights)`` as the family holds them, (tokens, k)."""
        spec = self._spec
        if spec.top_k_in_router is not None:
            inside = spec.top_k_in_router
            values = {part: reached.value
                      for part, reached in self._in_router((("indices", inside.indices), ("weights", inside.weights)))}
            return values["indices"], values["weights"]
        if spec.top_k_at_experts:
            args = self._envoy().inputs[0]
            return args[spec.top_k_at_experts[0]], args[spec.top_k_at_experts[1]]
        output = self._envoy().output
        if "dense_weights" in spec.router_returns:
            dense = output[spec.position("dense_weights")]
            indices = dense.topk(self._view._model.experts_per_token, dim=-1).indices
            return indices, dense.gather(-1, indices)
        return output[spec.position("indices")], output[spec.position("weights")]

    def _passed_on(self, indices: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A zero-computation expert's choice as the family hands it to its experts (`zero_experts_passed_as`)."""
        passed_as = self._spec.zero_experts_passed_as
        if passed_as is None:
            return indices, weights
        model = self._view._model
        zero = indices >= model.num_experts - model._zero_experts()
        return indices.masked_fill(zero, passed_as), weights.masked_fill(zero.to(weights.device), 0)

    def write(self, indices: torch.Tensor, weights: torch.Tensor) -> None:
        """Hand the block ``indices`` and ``weights`` (tokens * k values each) in the family's form."""
        spec, inside = self._spec, self._spec.top_k_in_router
        if inside is not None and inside.written:
            new = {"indices": indices, "weights": weights}
            for part, reached in self._in_router(inside.written):
                held = reached.value
                reached.write(new[part].reshape(held.shape).to(held))
            return
        indices, weights = self._passed_on(indices, weights)
        new = {"indices": indices, "weights": weights}
        envoy = self._envoy()
        if spec.top_k_at_experts:
            args, kwargs = envoy.inputs
            replaced = list(args)
            for part, at in zip(("indices", "weights"), spec.top_k_at_experts):
                replaced[at] = new[part].reshape(args[at].shape).to(args[at])
            envoy.inputs = (tuple(replaced), kwargs)
            return
        replaced = list(envoy.output)
        if "dense_weights" in spec.router_returns:
            dense = replaced[spec.position("dense_weights")]
            indices = indices.reshape(-1, indices.shape[-1]).to(dense.device)
            weights = weights.reshape(indices.shape).to(dense)
            # Summed, so two slots naming one expert add up, as in the other forms.
            replaced[spec.position("dense_weights")] = torch.zeros_like(dense).scatter_add(-1, indices, weights)
        else:
            for part in ("indices", "weights"):
                held = replaced[spec.position(part)]
                replaced[spec.position(part)] = new[part].reshape(held.shape).to(held)
        envoy.output = tuple(replaced)


class RouterTopK(_LayerView):
    """``router_top_k[i]``: the experts chosen per token in layer i and their weights, (batch, seq, k)."""

    name = "router_top_k"

    def __getitem__(self, index: int) -> TopK:
        layer = self._layer(index)
        indices, weights = _TopKSite(self, layer).read()
        batch, seq = self._batch_seq(layer)
        return TopK(indices.reshape(batch, seq, -1), weights.reshape(batch, seq, -1))

    def __setitem__(self, index: int, value: Any) -> None:
        layer = self._layer(index)
        site = _TopKSite(self, layer)
        # Wait where the write goes, not where the top-k is read: that may lie behind the forward already.
        site.enter()
        batch, seq = self._batch_seq(layer)
        expected = (batch, seq, self._model.experts_per_token)
        indices, weights = _unpack_top_k(value, index, expected)
        for what, tensor in (("indices", indices), ("weights", weights)):
            if tuple(tensor.shape) != expected:
                raise ShapeError(
                    f"router_top_k[{index}] {what} must have shape {expected} (batch, seq, "
                    f"experts_per_token={expected[2]}), got {tuple(tensor.shape)}; read "
                    f"`model.router_top_k[{index}]`, edit a clone, and write it back."
                )
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ShapeError(f"router_top_k[{index}] indices must be an integer tensor, got dtype {indices.dtype}.")
        num_experts = self._model.num_experts
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_experts):
            raise LayerIndexError(
                f"router_top_k[{index}] indices hold expert {int(indices.min())}..{int(indices.max())}, "
                f"out of range: layer {layer} has num_experts={num_experts}; use 0..{num_experts - 1}."
            )
        if self._model._moe_spec(self.name).distinct_experts:
            _refuse_repeated_experts(indices, index)
        site.write(indices, weights)


def _refuse_repeated_experts(indices: torch.Tensor, index: int) -> None:
    """Refuse a top-k naming one expert twice in a token, for routers that count each chosen expert once."""
    ordered = indices.sort(dim=-1).values
    repeated = (ordered[..., 1:] == ordered[..., :-1]).any(dim=-1)
    if bool(repeated.any()):
        batch, seq = (int(v) for v in repeated.nonzero()[0])
        raise ShapeError(
            f"router_top_k[{index}] indices name one expert twice for token ({batch}, {seq}): "
            f"{indices[batch, seq].tolist()}; this family's router counts each chosen expert once per token "
            f"(MoESpec.distinct_experts), so a repeated one would be miscounted. Give each of a token's slots "
            f"a different expert, with weight 0 for a slot that should add nothing."
        )


def _unpack_top_k(value: Any, index: int, expected: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, torch.Tensor) for v in value):
        return value[0], value[1]
    raise ShapeError(
        f"router_top_k[{index}] must be set to (indices, weights), two tensors of shape {expected}, "
        f"got {type(value).__name__}; e.g. `top = model.router_top_k[{index}]; "
        f"model.router_top_k[{index}] = (top.indices, new_weights)`."
    )


class SharedExpertsOutput(_LayerView):
    """``shared_experts_output[i]``: the always-on shared expert's output as (batch, seq, hidden)."""

    name = "shared_experts_output"

    def _shared(self, layer: int) -> "Envoy":
        path = self._model._moe_spec(self.name).shared_experts
        if path is None:
            adapter = self._model.adapter
            raise CapabilityError(
                f"shared_experts_output: adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}) serving "
                f"model type {self._model._model_type()!r} declares no shared expert (its MoE spec has "
                f"shared_experts=None); this family routes every token through its top-k experts only."
            )
        return _child(self._mlp(layer), path)

    def __getitem__(self, index: int) -> torch.Tensor:
        layer = self._layer(index)
        shared = self._shared(layer)
        output = shared.output
        batch, seq = self._batch_seq(layer)
        return output.reshape(batch, seq, output.shape[-1])

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        layer = self._layer(index)
        shared = self._shared(layer)
        output = shared.output
        batch, seq = self._batch_seq(layer)
        expected = (batch, seq, output.shape[-1])
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
            seen = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ShapeError(
                f"shared_experts_output[{index}] has shape {expected} (batch, seq, hidden); the value "
                f"written is {seen}; write a tensor of that shape."
            )
        shared.output = value.reshape(output.shape).to(output)


def _verify_top_k_points(model: Any, layer: int) -> None:
    """Refuse at load a `MoESpec.top_k_in_router` point the router's forward lacks, or a write before a read.

    A trace reads and writes in forward order, so a top-k read at a point could not be
    written back at an earlier one.
    """
    adapter = model.adapter
    inside = adapter.moe.top_k_in_router
    if inside is None:
        return
    router = _child(model.layers[layer].mlp, adapter.moe.router)
    for part, point in (("indices", inside.indices), ("weights", inside.weights), *inside.written):
        verify_first_level(router, point, adapter, f"moe.top_k_in_router.{part}")
    last_read = max(position(router, inside.indices), position(router, inside.weights))
    early = [point for _, point in inside.written if position(router, point) < last_read]
    if early:
        raise InvalidAdapterError(
            f"adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}) declares MoESpec.top_k_in_router "
            f"write points that run before its read points in the forward of {type(router._module).__name__} "
            f"({', '.join(describe(p) for p in early)}): a trace reads and writes in forward order, so a top-k "
            f"read there could not be written back. Write where the router's later code reads the choice."
        )


def _note_block_shape(shapes: dict, layer: int, module: Any, args: tuple, kwargs: dict) -> None:
    hidden = args[0] if args else next(v for v in kwargs.values() if isinstance(v, torch.Tensor))
    shapes[layer] = (int(hidden.shape[0]), int(hidden.shape[1]))


def _refuse_dense_model(model: Any) -> None:
    """An MoE adapter on a model with no MoE layer would report `is_moe` and serve nothing: refuse it."""
    adapter = model.adapter
    mlp = model.layers[0].mlp._module if model.num_layers else None
    raise UnsupportedArchitectureError(
        f"adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}) declares mixture-of-experts routing "
        f"(a `{adapter.moe.router}` router inside each layer's mlp), but no layer of this "
        f"{model._model_type()!r} model has one (layer 0's mlp is {type(mlp).__name__}): it is a dense model. "
        f"Drop adapter= to use the adapter of its family, or pass a dense one."
    )


class MixtureOfExpertsInterface:
    """The MoE part of `StandardizedTransformer`, served from the adapter's `MoESpec`.

    On a model whose adapter declares no MoE spec every member but `is_moe`
    raises `CapabilityError` naming the model type and the adapter.
    """

    @property
    def is_moe(self) -> bool:
        """Whether this model's adapter declares mixture-of-experts routing."""
        return self.adapter.moe is not None

    def _model_type(self) -> Optional[str]:
        return getattr(self.config, "model_type", None)

    def _moe_spec(self, what: str) -> MoESpec:
        spec = self.adapter.moe
        if spec is None:
            adapter = self.adapter
            raise CapabilityError(
                f"`{what}` needs mixture-of-experts routing, but model type {self._model_type()!r} is "
                f"served by adapter {adapter.name!r} ({adapter.plugin or '<explicit>'}), which declares no "
                f"`moe` spec: this is a dense model. Check `model.is_moe` first; MoE accessors work on "
                f"models whose adapter lists the 'moe' capability in `nnrosetta adapters`."
            )
        return spec

    def _config_int(self, key: str, what: str) -> int:
        value = self._config_value(key)
        if value is None:
            raise CapabilityError(
                f"`{what}`: adapter {self.adapter.name!r} reads config.{key}, which model type "
                f"{self._model_type()!r} does not have; fix the adapter's MoE spec config keys."
            )
        return int(value)

    @property
    def num_experts(self) -> int:
        """Number of routed experts per MoE layer."""
        return self._config_int(self._moe_spec("num_experts").num_experts_key, "num_experts")

    @property
    def experts_per_token(self) -> int:
        """k: the number of experts each token is routed to."""
        return self._config_int(self._moe_spec("experts_per_token").experts_per_token_key, "experts_per_token")

    @property
    def normalizes_top_k(self) -> bool:
        """Whether the family renormalises the chosen experts' weights to sum to 1."""
        flag = self._moe_spec("normalizes_top_k").normalize_top_k
        if callable(flag):
            return bool(flag(self.config))
        return bool(getattr(self.config, flag, False)) if isinstance(flag, str) else flag

    @property
    def top_k_scale(self) -> float:
        """What the chosen weights sum to when renormalised: 1, or the family's scaling factor."""
        key = self._moe_spec("top_k_scale").top_k_scale_key
        value = self._config_value(key) if key is not None else None
        return 1.0 if value is None else float(value)

    def _zero_experts(self) -> int:
        """How many of the `num_experts` are zero-computation experts (the last ones); 0 for most families."""
        key = self._moe_spec("zero_experts").zero_experts_key
        value = self._config_value(key) if key is not None else None
        return int(value or 0)

    @property
    def moe_layers(self) -> list[int]:
        """Indices of the layers whose ``mlp`` is a routed MoE block (some families mix in dense ones)."""
        router = self._moe_spec("moe_layers").router
        return [i for i in range(self.num_layers) if _has_path(self.layers[i].mlp._module, router)]

    def _moe_layer(self, index: int, what: str) -> int:
        spec = self._moe_spec(what)
        layer = normalize_index(index, self.num_layers, "layer", "num_layers")
        mlp = self.layers[layer].mlp._module
        if not _has_path(mlp, spec.router):
            raise CapabilityError(
                f"`{what}[{index}]`: layer {layer} is dense (its mlp is {type(mlp).__name__}, with no "
                f"`{spec.router}` router); this model's MoE layers are {self.moe_layers}."
            )
        self._record_moe_block_shapes()
        return layer

    def _record_moe_block_shapes(self) -> None:
        """Keep each MoE block's (batch, seq), seen on entry, for reshaping its flat router tensors.

        Routers see tokens flattened to (batch * seq, hidden), and once the router has run
        nnsight can no longer hand out the block's input, so a plain forward pre-hook notes
        the shape on every call. Installed once, when the model is wrapped; a no-op for
        dense models. Installed again if the wrapped module was replaced (a lazy dispatch).
        A top-k declared inside the router has its points checked here, at load.
        """
        if self.adapter.moe is None or self.__dict__.get("_moe_hooked_module") is self._module:
            return
        moe_layers = self.moe_layers
        if not moe_layers:
            _refuse_dense_model(self)
        _verify_top_k_points(self, moe_layers[0])
        shapes: dict[int, tuple[int, int]] = {}
        object.__setattr__(self, "_moe_block_shapes", shapes)
        object.__setattr__(self, "_moe_hooked_module", self._module)
        for layer in moe_layers:
            self.layers[layer].mlp._module.register_forward_pre_hook(
                functools.partial(_note_block_shape, shapes, layer), with_kwargs=True
            )

    @property
    def routers_output(self) -> RouterLogits:
        """Inside a trace: router logits of layer i, (batch, seq, num_experts). Read-only."""
        self._moe_spec("routers_output")
        return RouterLogits(self)

    @property
    def router_top_k(self) -> RouterTopK:
        """Inside a trace: `TopK(indices, weights)` of layer i, each (batch, seq, k); assignable."""
        self._moe_spec("router_top_k")
        return RouterTopK(self)

    @property
    def shared_experts_output(self) -> SharedExpertsOutput:
        """Inside a trace: the shared expert's output of layer i, (batch, seq, hidden); assignable."""
        self._moe_spec("shared_experts_output")
        return SharedExpertsOutput(self)

    def ablate_experts(self, layer: int, experts: Union[int, Sequence[int]]) -> None:
        """Inside a trace, let no token of ``layer`` take anything from ``experts``.

        Each token keeps its other chosen experts; their weights are renormalised to
        sum to 1 (or `top_k_scale`) where the family does so (`normalizes_top_k`), else
        left as they are.
        A slot that chose an ablated expert keeps its index with weight 0: the family's
        fused kernels then group tokens exactly as before, so tokens that chose none of
        ``experts`` are computed bit for bit as without the ablation (pointing the slot
        at another expert would regroup tokens and change their rounding).
        """
        num_experts = self.num_experts
        chosen = [experts] if isinstance(experts, int) else list(experts)
        if not chosen:
            raise LayerIndexError("ablate_experts: no expert was given; pass an expert index or a list of them.")
        ablated = torch.zeros(num_experts, dtype=torch.bool)
        for expert in chosen:
            ablated[normalize_index(expert, num_experts, "expert", "num_experts")] = True
        top = self.router_top_k[layer]
        ablated = ablated.to(top.indices.device)
        hit = ablated[top.indices]
        weights = top.weights.masked_fill(hit, 0)
        if self.normalizes_top_k:
            total = weights.sum(dim=-1, keepdim=True)
            renormalised = torch.where(total > 0, weights / total.clamp_min(torch.finfo(weights.dtype).tiny), weights)
            if self.top_k_scale != 1.0:
                renormalised = renormalised * self.top_k_scale
            weights = torch.where(hit.any(dim=-1, keepdim=True), renormalised, top.weights)
        self.router_top_k[layer] = (top.indices, weights)
