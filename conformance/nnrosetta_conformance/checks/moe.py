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

from .base import CheckFailure, check, current_probe, expect

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer


def _inputs(model: "StandardizedTransformer") -> dict[str, torch.Tensor]:
    return current_probe(model).inputs(model.device)


def _fused_linear(experts: Any, x: torch.Tensor, name: str, index: int) -> torch.Tensor:
    weight = getattr(experts, name)[index]
    out = x @ weight if getattr(experts, "is_transposed", False) else x @ weight.T
    if getattr(experts, "has_bias", False):
        out = out + getattr(experts, f"{name}_bias")[index]
    return out


def expert_by_hand(experts: Any, index: int, hidden: torch.Tensor) -> torch.Tensor:
    """Expert ``index`` of a transformers fused-experts module applied to (tokens, hidden) states.

    Written from the layout transformers 5 gives every fused experts module
    (``gate_up_proj`` / ``up_proj`` and ``down_proj`` stacked over experts, with the
    ``has_gate``, ``has_bias`` and ``is_transposed`` flags), not from the module's forward.
    """
    if not hasattr(experts, "down_proj"):
        raise CheckFailure(
            f"moe_routing computes an expert by hand from transformers' fused expert weights "
            f"(down_proj, gate_up_proj or up_proj), but {type(experts).__name__} has none; "
            f"the adapter's MoESpec.experts should point at the fused experts module."
        )
    if getattr(experts, "has_gate", True):
        hidden = experts._apply_gate(_fused_linear(experts, hidden, "gate_up_proj", index))
    else:
        hidden = experts.act_fn(_fused_linear(experts, hidden, "up_proj", index))
    return _fused_linear(experts, hidden, "down_proj", index)


def _experts_module(model: "StandardizedTransformer", layer: int) -> Any:
    module = model.layers[layer].mlp._module
    for part in model.adapter.moe.experts.split("."):
        module = getattr(module, part)
    return module


def _check_router_logits(model: "StandardizedTransformer", layers: list[int]) -> dict[int, Any]:
    """Router logits: shape, equal to HF's own, and their top-k equals the experts used."""
    probe = current_probe(model)
    num_experts, k = model.num_experts, model.experts_per_token
    logits: dict[int, torch.Tensor] = {}
    chosen: dict[int, Any] = {}
    native: list = []
    with torch.no_grad(), model.trace(_inputs(model), output_router_logits=True):
        for layer in layers:
            logits[layer] = model.routers_output[layer].save()
            chosen[layer] = model.router_top_k[layer]
            chosen[layer] = (chosen[layer].indices.save(), chosen[layer].weights.save())
        native.append(model.output.router_logits)
    expected = (probe.batch_size, probe.sequence_length, num_experts)
    hf_logits = native[0]
    expect(
        hf_logits is not None and len(hf_logits) == len(layers),
        f"the model's own output_router_logits=True output should hold one tensor per MoE layer "
        f"({len(layers)}: layers {layers}), got {None if hf_logits is None else len(hf_logits)}",
    )
    for position, layer in enumerate(layers):
        seen = logits[layer]
        expect(
            tuple(seen.shape) == expected,
            f"routers_output[{layer}] should have shape {expected} (batch, seq, num_experts), got {tuple(seen.shape)}",
        )
        expect(
            torch.equal(seen.reshape(-1, num_experts), hf_logits[position].reshape(-1, num_experts)),
            f"routers_output[{layer}] differs from the model's own router_logits[{position}] "
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
        sum_to_one = bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-4))
        expect(
            sum_to_one == model.normalizes_top_k,
            f"layer {layer}: the adapter declares normalize_top_k={model.normalizes_top_k}, but the weights the "
            f"router hands the experts {'do not ' if not sum_to_one else ''}sum to 1 per token (sums "
            f"{[round(float(v), 4) for v in sums[:6]]}...); fix the MoESpec's normalize_top_k",
        )
        recomputed = seen.topk(k, dim=-1).indices.sort(dim=-1).values
        used = indices.sort(dim=-1).values
        mismatched = int((recomputed != used).any(dim=-1).sum())
        expect(
            mismatched == 0,
            f"layer {layer}: the top-{k} experts recomputed from routers_output differ from the "
            f"experts the model used (router_top_k) at {mismatched} token(s)",
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
    saved: dict[str, torch.Tensor] = {}
    with torch.no_grad(), model.trace(_inputs(model)):
        saved["input"] = model.mlps_input[layer].save()
        top = model.router_top_k[layer]
        weights = torch.zeros_like(top.weights)
        weights[..., 0] = weight
        model.router_top_k[layer] = (torch.full_like(top.indices, expert), weights)
        saved["output"] = model.mlps_output[layer].save()
    return saved["input"], saved["output"]


def _check_forcing(model: "StandardizedTransformer", layer: int, expert: int) -> None:
    """Every token forced to one expert: the block adds exactly that expert's output."""
    hidden, forced = _forced_output(model, layer, expert, 1.0)
    _, rest = _forced_output(model, layer, expert, 0.0)
    flat = hidden.reshape(-1, hidden.shape[-1])
    with torch.no_grad():
        by_hand = expert_by_hand(_experts_module(model, layer), expert, flat).reshape(hidden.shape)
    expected = rest + by_hand
    scale = max(1.0, float(expected.abs().max()))
    error = float((forced - expected).abs().max())
    expect(
        error <= 1e-5 * scale,
        f"layer {layer}: with every token forced to expert {expert} (weight 1) the block output "
        f"should be its other parts plus that expert computed by hand; max abs diff {error:.3g}",
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
    least_used = int(torch.bincount(indices.reshape(-1), minlength=num_experts).argmin())
    _check_forcing(model, layer, least_used)
