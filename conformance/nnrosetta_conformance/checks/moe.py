"""Conformance of the mixture-of-experts interface: routing is read, recomputed and steered right.

One check, ``moe_routing``, for every adapter that claims `Capability.MOE`:
router logits have the standard shape and equal the model's own
``output_router_logits=True`` output; the experts the model used are the top-k of
those logits; ablating an expert changes exactly the tokens routed to it; and
forcing every token to one expert gives what that expert computes by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch

from nnrosetta.capabilities import Capability
from nnrosetta.moe_declarations import ExpertByHand, Routing

from .base import CheckFailure, check, current_probe, expect

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer


def _inputs(model: "StandardizedTransformer") -> dict[str, torch.Tensor]:
    return current_probe(model).inputs(model.device)


def _attribute(module: Any, path: str) -> Any:
    for part in path.split(".") if path else ():
        module = getattr(module, part)
    return module


def _has_attribute(module: Any, path: str) -> bool:
    try:
        _attribute(module, path)
    except AttributeError:
        return False
    return True


def _parameter(experts: Any, name: str, index: int, rows: Optional[int]) -> torch.Tensor:
    tensor = _attribute(experts, name)
    if rows is not None:
        return tensor.reshape(-1, rows, tensor.shape[-1])[index]
    return tensor[index]


def _apply(experts: Any, how: ExpertByHand, x: torch.Tensor, name: str, index: int,
           transposed: bool, rows: Optional[int] = None) -> torch.Tensor:
    weight = _parameter(experts, name, index, rows)
    out = x @ weight if transposed else x @ weight.T
    if how.bias_suffix is not None:
        out = out + _attribute(experts, f"{name}{how.bias_suffix}")[index]
    return out


def expert_by_hand(experts: Any, how: ExpertByHand, index: int, hidden: torch.Tensor,
                   ffn_rows: Optional[int] = None) -> torch.Tensor:
    """Expert ``index`` applied to (tokens, hidden) states, computed from the adapter's declaration.

    Reads only the stacked parameters the declaration names (`ExpertByHand`), never
    the experts module's forward or its private methods.
    """
    missing = [n for n in (how.gate_up, how.gate, how.up, how.down) if n is not None and not _has_attribute(experts, n)]
    if missing:
        raise CheckFailure(
            f"moe_routing computes an expert by hand from the parameters the adapter's "
            f"MoESpec.expert_by_hand names, but {type(experts).__name__} has no {missing}; "
            f"point MoESpec.experts at the module holding them or fix expert_by_hand."
        )
    transposed = how.transposed
    if how.gate_up is not None:
        fused = _apply(experts, how, hidden, how.gate_up, index, transposed, None if ffn_rows is None else 2 * ffn_rows)
        if how.interleaved:
            first, second = fused[..., ::2], fused[..., 1::2]
        else:
            first, second = fused.chunk(2, dim=-1)
        gate, up = (second, first) if how.up_first else (first, second)
    else:
        up = _apply(experts, how, hidden, how.up, index, transposed, ffn_rows)
        gate = None if how.gate is None else _apply(experts, how, hidden, how.gate, index, transposed, ffn_rows)
    if callable(how.activation):
        inner = how.activation(experts, gate, up)
    else:
        act = _attribute(experts, how.activation)
        inner = act(up) if gate is None else act(gate) * up
    down_transposed = transposed if how.down_transposed is None else how.down_transposed
    return _apply(experts, how, inner, how.down, index, down_transposed, ffn_rows)


def _mlp_attribute(model: "StandardizedTransformer", layer: int, path: str) -> Any:
    """A module or tensor by path from layer ``layer``'s mlp (``""``: the mlp itself)."""
    return _attribute(model.layers[layer].mlp._module, path)


def _experts_module(model: "StandardizedTransformer", layer: int) -> Any:
    return _mlp_attribute(model, layer, model.adapter.moe.experts)


def chosen_by_declaration(model: "StandardizedTransformer", layer: int, logits: torch.Tensor) -> torch.Tensor:
    """The experts the declared `Routing` picks from (tokens, num_experts) logits, (tokens, k)."""
    routing: Routing = model.adapter.moe.routing
    k = model.experts_per_token
    scores = logits.float()
    if routing.scores == "softmax":
        scores = scores.softmax(dim=-1)
    elif routing.scores == "sigmoid":
        scores = scores.sigmoid()
    if routing.score_bias is not None:
        bias = _mlp_attribute(model, layer, routing.score_bias)
        scores = scores + bias.detach().float().reshape(-1).to(scores.device)
    groups = routing.group_sizes(model.config)
    if groups is not None and groups[0] > 1:
        n_group, keep = groups
        grouped = scores.reshape(scores.shape[0], n_group, -1)
        if routing.group_score == "top2_sum":
            group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
        else:
            group_scores = grouped.max(dim=-1).values
        kept = torch.zeros_like(group_scores, dtype=torch.bool)
        kept.scatter_(1, group_scores.topk(keep, dim=-1).indices, True)
        allowed = kept.unsqueeze(-1).expand_as(grouped).reshape(scores.shape)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.topk(k, dim=-1).indices


def _check_router_logits(model: "StandardizedTransformer", layers: list[int]) -> dict[int, Any]:
    """Router logits: shape, equal to HF's own, and their top-k equals the experts used."""
    probe = current_probe(model)
    num_experts, k = model.num_experts, model.experts_per_token
    logits: dict[int, torch.Tensor] = {}
    chosen: dict[int, Any] = {}
    native: list = []
    in_router = model.adapter.moe.top_k_in_router is not None
    with torch.no_grad(), model.trace(_inputs(model), output_router_logits=True):
        for layer in layers:
            # A top-k read inside the router runs before the router returns its logits.
            if not in_router:
                logits[layer] = model.routers_output[layer].save()
            chosen[layer] = model.router_top_k[layer]
            chosen[layer] = (chosen[layer].indices.save(), chosen[layer].weights.save())
            if in_router:
                logits[layer] = model.routers_output[layer].save()
        native.append(model.output.router_logits)
    expected = (probe.batch_size, probe.sequence_length, num_experts)
    per_layer, place = model.adapter.moe.recorded_logits
    recorded = native[0]
    expect(
        recorded is not None and len(recorded) == per_layer * len(layers),
        f"the model's own output_router_logits=True output should hold {per_layer} tensor(s) per MoE layer "
        f"(MoESpec.recorded_logits={model.adapter.moe.recorded_logits}; {len(layers)} layers: {layers}), got "
        f"{None if recorded is None else len(recorded)}",
    )
    hf_logits = recorded[place::per_layer]
    for position, layer in enumerate(layers):
        seen = logits[layer]
        expect(
            tuple(seen.shape) == expected,
            f"routers_output[{layer}] should have shape {expected} (batch, seq, num_experts), got {tuple(seen.shape)}",
        )
        expect(
            torch.equal(seen.reshape(-1, num_experts), hf_logits[position].reshape(-1, num_experts)),
            f"routers_output[{layer}] differs from the model's own router_logits[{position * per_layer + place}] "
            f"(max abs diff {(seen.reshape(-1, num_experts) - hf_logits[position].reshape(-1, num_experts)).abs().max():.3g})",
        )
        indices, weights = chosen[layer]
        expect(
            tuple(indices.shape) == expected[:2] + (k,) and tuple(weights.shape) == expected[:2] + (k,),
            f"router_top_k[{layer}] should be two tensors of shape {expected[:2] + (k,)}, got "
            f"{tuple(indices.shape)} and {tuple(weights.shape)}",
        )
        real = probe.attention_mask.bool().to(weights.device)
        sums = weights.float().sum(-1)[real]
        scale = model.top_k_scale
        sum_to_one = bool(torch.allclose(sums, torch.full_like(sums, scale), atol=1e-4 * scale))
        # With every expert chosen, softmax weights sum to the scale whether or not they are renormalised.
        undecidable = k == num_experts and model.adapter.moe.routing.scores == "softmax" and sum_to_one
        expect(
            undecidable or sum_to_one == model.normalizes_top_k,
            f"layer {layer}: the adapter declares normalize_top_k={model.normalizes_top_k}, but the weights the "
            f"router hands the experts {'do not ' if not sum_to_one else ''}sum to {scale:g} per token (sums "
            f"{[round(float(v), 4) for v in sums[:6]]}...); fix the MoESpec's normalize_top_k or top_k_scale_key",
        )
        recomputed = chosen_by_declaration(model, layer, seen.reshape(-1, num_experts))
        recomputed = recomputed.reshape(indices.shape).sort(dim=-1).values
        used = indices.sort(dim=-1).values
        mismatched = int((recomputed != used).any(dim=-1).sum())
        expect(
            mismatched == 0,
            f"layer {layer}: the top-{k} experts recomputed from routers_output with the declared "
            f"MoESpec.routing ({model.adapter.moe.routing}) differ from the experts the model used "
            f"(router_top_k) at {mismatched} token(s)",
        )
    return chosen


def _check_ablation(model: "StandardizedTransformer", layer: int, indices: torch.Tensor) -> None:
    """Ablating the busiest expert changes the block output of exactly the tokens routed to it."""
    counts = torch.bincount(indices.reshape(-1), minlength=model.num_experts)
    expert = int(counts.argmax())
    routed = (indices == expert).any(dim=-1)
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad(), model.trace(_inputs(model)):
        outputs["baseline"] = model.mlps_output[layer].save()
    with torch.no_grad(), model.trace(_inputs(model)):
        model.ablate_experts(layer, [expert])
        outputs["ablated"] = model.mlps_output[layer].save()
    differs = (outputs["baseline"] != outputs["ablated"]).any(dim=-1)
    # Padding positions carry zero states in many families, on which every expert outputs 0.
    real = current_probe(model).attention_mask.bool().to(routed.device)
    expect(
        bool(differs[routed & real].all()),
        f"layer {layer}: ablating expert {expert} left {int((~differs[routed & real]).sum())} of the "
        f"{int((routed & real).sum())} real token(s) routed to it unchanged",
    )
    expect(
        not bool(differs[~routed].any()),
        f"layer {layer}: ablating expert {expert} changed {int(differs[~routed].sum())} token(s) "
        f"that were not routed to it (expected bit-identical outputs there)",
    )


def _forced_output(model: "StandardizedTransformer", layer: int, expert: int, weight: float) -> tuple:
    """The block's input, its output, and (with a declared `MoESpec.output_norm`) that norm's input."""
    saved: dict[str, torch.Tensor] = {}
    norm = model.adapter.moe.output_norm
    with torch.no_grad(), model.trace(_inputs(model)):
        saved["input"] = model.mlps_input[layer].save()
        top = model.router_top_k[layer]
        weights = torch.zeros_like(top.weights)
        weights[..., 0] = weight
        indices = torch.full_like(top.indices, expert)
        if model.adapter.moe.distinct_experts:
            # The router counts each expert once per token: the other slots name other experts, at weight 0.
            others = [e for e in range(model.num_experts) if e != expert][: indices.shape[-1] - 1]
            for slot, other in enumerate(others, start=1):
                indices[..., slot] = other
        model.router_top_k[layer] = (indices, weights)
        if norm is not None:
            saved["before_norm"] = _attribute(model.layers[layer].mlp, norm).input.save()
        saved["output"] = model.mlps_output[layer].save()
    return saved["input"], saved["output"], saved.get("before_norm")


def _check_forcing(model: "StandardizedTransformer", layer: int, expert: int) -> None:
    """Every token forced to one expert: the block adds exactly that expert's output."""
    hidden, forced, _ = _forced_output(model, layer, expert, 1.0)
    _, rest, rest_before_norm = _forced_output(model, layer, expert, 0.0)
    flat = hidden.reshape(-1, hidden.shape[-1])
    spec = model.adapter.moe
    zero = model._zero_experts()
    with torch.no_grad():
        if expert >= model.num_experts - zero:
            # A zero-computation expert hands back its input, or nothing (MoESpec.zero_experts_output).
            by_hand = hidden if spec.zero_experts_output == "input" else torch.zeros_like(hidden)
        else:
            rows = model._config_value(spec.expert_by_hand.flat_rows) if spec.expert_by_hand.flat_rows else None
            by_hand = expert_by_hand(_experts_module(model, layer), spec.expert_by_hand, expert, flat,
                                     None if rows is None else int(rows)).reshape(hidden.shape)
    scale_key = spec.routed_output_scale_key
    scale_value = model._config_value(scale_key) if scale_key is not None else None
    routed = by_hand * (1.0 if scale_value is None else float(scale_value))
    if spec.output_norm is None:
        expected = rest + routed
    else:
        # The block returns norm(routed + shared): its other parts are read where the norm receives them.
        with torch.no_grad():
            expected = _mlp_attribute(model, layer, spec.output_norm)(
                rest_before_norm + routed.reshape(rest_before_norm.shape)
            ).reshape(forced.shape)
    scale = max(1.0, float(expected.abs().max()))
    error = float((forced - expected).abs().max())
    expect(
        error <= 1e-5 * scale,
        f"layer {layer}: with every token forced to expert {expert} (weight 1) the block output "
        f"should be its other parts plus that expert computed by hand (times MoESpec.routed_output_scale_key "
        f"where declared), through MoESpec.output_norm where declared (declared: {spec.output_norm!r}); "
        f"max abs diff {error:.3g}",
    )


@check("moe_routing", requires=[Capability.MOE])
def moe_routing(model: "StandardizedTransformer") -> None:
    """Router logits, top-k choice, expert ablation and forcing behave as the family computes them."""
    layers = model.moe_layers
    expect(model.is_moe, f"adapter {model.adapter.name!r} claims MoE but model.is_moe is False")
    expect(bool(layers), f"adapter {model.adapter.name!r} claims MoE but no layer has a router at "
           f"mlp.{model.adapter.moe.router}")
    num_experts, k = model.num_experts, model.experts_per_token
    expect(1 <= k <= num_experts, f"experts_per_token={k} should be in 1..num_experts={num_experts}")
    chosen = _check_router_logits(model, layers)
    layer: Optional[int] = layers[0]
    indices = chosen[layer][0]
    _check_ablation(model, layer, indices)
    counts = torch.bincount(indices.reshape(-1), minlength=num_experts)
    zero = model._zero_experts()
    _check_forcing(model, layer, int(counts[: num_experts - zero].argmin()))
    if zero:
        _check_forcing(model, layer, num_experts - 1)
