"""Conformance checks of attention internals: probabilities, per-head values, recomputed patterns.

The reference is always HuggingFace's own code: the probabilities the model
returns with ``output_attentions=True`` under eager attention, and the attention
module's own output projection. The checks switch the model's attention
implementation for their duration (same weights) and switch it back.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Optional

import torch

from nnrosetta.attention import attention_implementation, attention_module, sink_logits
from nnrosetta.capabilities import Capability
from nnrosetta.errors import CapabilityError
from nnrosetta.heads import attention_call, output_projection
from nnrosetta.layer_kinds import softmax_layers
from nnrosetta.source_points import first_level_label, reach

from .base import CheckFailure, CheckSkipped, Probe, check, current_probe, expect, model_device, where_differs

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer

#: Rows of probabilities sum to 1 up to this many float epsilons.
ROW_SUM_ULPS = 16
#: Patterns recomputed under sdpa may differ from eager's by this many epsilons.
PATTERN_ULPS = 16
#: Rotary embedding keeps head-vector norms up to this many epsilons (at the values' scale).
ROTARY_NORM_ULPS = 64
ABLATED_HEAD = 0
#: Length of the row of distinct tokens on which attention edits must show.
EFFECT_LENGTH = 6


def _hf_attentions(model: "StandardizedTransformer") -> tuple[torch.Tensor, ...]:
    """HuggingFace's own probabilities for the probe (eager), with the positions a trace passes."""
    from .core import reference_positions  # here: core imports this module's neighbours at load

    probe = current_probe(model)
    device = model_device(model)
    with torch.no_grad():
        output = model._module(
            **probe.inputs(device), **reference_positions(model, device), output_attentions=True
        )
    attentions = output.attentions
    if len(attentions) == model.num_layers:
        return attentions
    # Hybrid models record probabilities of their softmax-attention layers only: index them by layer.
    return dict(zip(softmax_layers(model), attentions))


def _allowed_keys(model: "StandardizedTransformer") -> torch.Tensor:
    """(batch, 1, q, k): True where a real query may attend a real, earlier-or-equal key."""
    mask = current_probe(model).attention_mask.bool()
    seq = mask.shape[1]
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    return (causal & mask[:, None, :] & mask[:, :, None])[:, None]


def _uniform_over_allowed(probabilities: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Another valid distribution: uniform over each real query's allowed keys (padded rows kept)."""
    allowed = allowed.to(probabilities.device).expand_as(probabilities)
    counts = allowed.sum(-1, keepdim=True)
    uniform = allowed.to(probabilities.dtype) / counts.clamp(min=1).to(probabilities.dtype)
    return torch.where(counts > 0, uniform, probabilities)


def _largest(values: torch.Tensor) -> float:
    """The largest magnitude in ``values`` (0 for an empty selection), for failure messages."""
    return float(values.abs().max()) if values.numel() else 0.0


def _effect_probe(model: "StandardizedTransformer") -> Probe:
    """One unpadded row of distinct tokens, on which an attention edit must change the logits.

    A drawn probe may be one token long or repeat one token; there, every key carries the
    same value and no edit of the attention weights can change anything, so effects are
    shown on this row instead (identity write-backs still run on the drawn probe).
    """
    generator = torch.Generator().manual_seed(0)
    length = min(EFFECT_LENGTH, model.vocab_size)
    ids = torch.randperm(model.vocab_size, generator=generator)[:length].unsqueeze(0)
    return Probe(ids, torch.ones_like(ids))


def _logits(model: "StandardizedTransformer", inputs: dict) -> torch.Tensor:
    with torch.no_grad(), model.trace(inputs):
        logits = model.logits.save()
    return logits


@check("attention_probabilities", requires=(Capability.ATTENTION_PROBABILITIES,))
def attention_probabilities(model: "StandardizedTransformer") -> None:
    """Probabilities have the right shape, are causal, ignore padding, equal HF's own, and edits take effect."""
    probe = current_probe(model)
    inputs = probe.inputs(model_device(model))
    batch, seq = probe.batch_size, probe.sequence_length
    with attention_implementation(model, "eager"):
        seen: dict[int, torch.Tensor] = {}
        with torch.no_grad(), model.trace(inputs):
            for index in softmax_layers(model):
                seen[index] = model.attention_probabilities[index].save()
            logits = model.logits.save()
        reference = _hf_attentions(model)
        allowed = _allowed_keys(model)
        real_queries = probe.attention_mask.bool()[:, None, :, None].expand(batch, 1, seq, seq)
        for index, probabilities in seen.items():
            where = f"attention_probabilities[{index}]"
            expected_shape = (batch, model.layer_sizes(index)["num_heads"], seq, seq)
            expect(
                tuple(probabilities.shape) == expected_shape,
                f"{where} has shape {tuple(probabilities.shape)}, expected {expected_shape} "
                f"(batch, num_heads, q, k) on a ({batch}, {seq}) probe.",
            )
            probabilities = probabilities.detach().cpu()
            _rows_sum_to_one_or_less(model, index, probabilities, real_queries)
            later = (real_queries & torch.ones(seq, seq, dtype=torch.bool).triu(1)).expand_as(probabilities)
            expect(
                bool((probabilities[later] == 0).all()),
                f"{where} is not causal: a real query attends a later key, max weight "
                f"{_largest(probabilities[later]):.3g} above the diagonal.",
            )
            padded = (real_queries & ~allowed & ~later).expand_as(probabilities)
            expect(
                bool((probabilities[padded] == 0).all()),
                f"{where}: real queries put weight on padded keys (max {_largest(probabilities[padded]):.3g}); "
                f"padding must get exactly 0.",
            )
            hf = reference[index].detach().cpu()
            expect(
                torch.equal(probabilities, hf),
                f"{where} differs from HuggingFace's own output_attentions (eager) for layer {index}: "
                f"{where_differs(probabilities, hf)}. The adapter's `attention.probabilities` label points "
                f"at another value than the one the attention uses.",
            )
        _missing_mass_is_the_sinks(model, seen)
        layer = softmax_layers(model)[-1]
        with torch.no_grad(), model.trace(inputs):
            current = model.attention_probabilities[layer]
            model.attention_probabilities[layer] = current.clone()
            identity_logits = model.logits.save()
        effect_inputs = _effect_probe(model).inputs(model_device(model))
        effect_length = effect_inputs["input_ids"].shape[1]
        causal = torch.ones(effect_length, effect_length, dtype=torch.bool).tril()[None, None]
        unedited_logits = _logits(model, effect_inputs)
        with torch.no_grad(), model.trace(effect_inputs):
            current = model.attention_probabilities[layer]
            model.attention_probabilities[layer] = _uniform_over_allowed(current, causal)
            edited_logits = model.logits.save()
    expect(
        torch.equal(identity_logits, logits),
        f"writing attention_probabilities[{layer}] back unchanged changed the logits: "
        f"{where_differs(identity_logits, logits)}.",
    )
    expect(
        not torch.equal(edited_logits, unedited_logits),
        f"replacing attention_probabilities[{layer}] with a uniform distribution left the logits of every real "
        f"position unchanged: the write does not reach the attention's output.",
    )


def _row_tolerance(probabilities: torch.Tensor) -> float:
    return ROW_SUM_ULPS * torch.finfo(probabilities.dtype).eps


def _declared_sinks(model: "StandardizedTransformer", index: int) -> Optional[torch.Tensor]:
    """Layer ``index``'s declared sink logits, checked to be one per head (None: no sink there)."""
    try:
        sinks = sink_logits(model, index)
    except CapabilityError as error:
        raise CheckFailure(str(error)) from None
    heads = model.layer_sizes(index)["num_heads"]
    expect(
        sinks is None or tuple(sinks.shape) == (heads,),
        f"the declared attention sinks of layer {index} (`attention.sinks`) have shape "
        f"{tuple(sinks.shape) if sinks is not None else None}, expected ({heads},): one logit per head.",
    )
    return sinks


def _rows_sum_to_one_or_less(
    model: "StandardizedTransformer", index: int, probabilities: torch.Tensor, real_queries: torch.Tensor
) -> None:
    """Rows sum to 1; with a declared sink, to at most 1, and to less somewhere (the sink takes a share)."""
    where = f"attention_probabilities[{index}]"
    sums = probabilities.float().sum(-1)
    ones = torch.ones_like(sums)
    tolerance = _row_tolerance(probabilities)
    if _declared_sinks(model, index) is None:
        expect(
            torch.allclose(sums, ones, atol=tolerance, rtol=0),
            f"{where}: rows must sum to 1, {where_differs(sums, ones)}"
            + (". Where the family's softmax has a per-head sink column it drops, declare `attention.sinks`"
               if bool((sums < 1 - tolerance).any()) else "")
            + ".",
        )
        return
    expect(
        bool((sums <= 1 + tolerance).all()),
        f"{where}: with attention sinks declared rows must sum to at most 1 (the sink takes the rest), "
        f"but one sums to {float(sums.max()):.9g}.",
    )
    real = real_queries[..., 0].expand_as(sums)
    expect(
        bool((sums[real] < 1 - tolerance).any()),
        f"{where}: attention sinks are declared (`attention.sinks`) but every real row sums to 1 "
        f"(largest missing mass {float((1 - sums[real]).max()):.3g}): the sink takes no share here.",
    )


@contextlib.contextmanager
def _sinks_removed(model: "StandardizedTransformer", layers: list[int]) -> Iterator[None]:
    """The declared sink logits of ``layers`` set to -inf (a share of exactly 0), restored after."""
    kept = [(sinks, sinks.detach().clone()) for sinks in (sink_logits(model, i) for i in layers) if sinks is not None]
    try:
        with torch.no_grad():
            for sinks, _ in kept:
                sinks.fill_(float("-inf"))
        yield
    finally:
        with torch.no_grad():
            for sinks, value in kept:
                sinks.copy_(value)


def _missing_mass_is_the_sinks(model: "StandardizedTransformer", seen: dict[int, torch.Tensor]) -> None:
    """What a row lacks of 1 is the declared sink's share: without the sink the row is the same up to its sum.

    With sink logit s and key scores a_j, p_j = exp(a_j) / (exp(s) + sum exp(a)); with the sink's
    logit at -inf, HuggingFace's own eager code gives q_j = exp(a_j) / sum exp(a). So p_j = q_j * sum_j p_j
    exactly when the missing mass 1 - sum_j p_j is the declared parameter's share, and not some other loss.
    """
    for index in [index for index in seen if _declared_sinks(model, index) is not None]:
        # One layer at a time: without its sink a layer's output changes, and so every later layer's input.
        with _sinks_removed(model, [index]):
            plain = _hf_attentions(model)[index].detach().cpu()
        with_sink = seen[index].detach().cpu()
        tolerance = _row_tolerance(with_sink)
        sums = plain.float().sum(-1)
        expect(
            torch.allclose(sums, torch.ones_like(sums), atol=tolerance, rtol=0),
            f"attention_probabilities[{index}] with the declared sinks (`attention.sinks`) at -inf: rows must sum "
            f"to 1, {where_differs(sums, torch.ones_like(sums))}; something besides the sink takes a share.",
        )
        rescaled = (plain.float() * with_sink.float().sum(-1, keepdim=True)).to(with_sink.dtype)
        expect(
            torch.allclose(rescaled, with_sink, atol=tolerance, rtol=0),
            f"attention_probabilities[{index}] is not HuggingFace's probabilities without the declared sink "
            f"(`attention.sinks`) scaled by the row's sum: {where_differs(rescaled, with_sink)}. The missing mass "
            f"is not the share of that parameter's logit.",
        )


@check("heads", requires=(Capability.HEADS,))
def heads(model: "StandardizedTransformer") -> None:
    """Per-head shapes; heads_output through the output projection is attentions_output; head ablation works."""
    probe = current_probe(model)
    inputs = probe.inputs(model_device(model))
    batch, seq = probe.batch_size, probe.sequence_length
    heads_count, kv_heads, head_dim = model.num_heads, model.num_kv_heads, model.head_dim
    projection = model.adapter.heads.output_projection
    shapes: dict[str, tuple] = {}
    seen: dict[str, torch.Tensor] = {}
    outputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    spec = model.adapter.heads
    by_call = spec.attention_call is not None
    names = ("queries", "keys", "values") + (("rotated_queries", "rotated_keys") if by_call else ())
    with torch.no_grad(), model.trace(inputs):
        for index in softmax_layers(model):
            for name in names:
                seen[f"{name}[{index}]"] = getattr(model, name)[index].save()
                shapes[f"{name}[{index}]"] = tuple(seen[f"{name}[{index}]"].shape)
            if by_call:
                call = attention_call(model, index, "heads check")
                seen[f"attention values[{index}]"] = call.inputs[0][spec.call_arguments[2]].save()
            heads_output = model.heads_output[index].save()
            shapes[f"heads_output[{index}]"] = tuple(heads_output.shape)
            outputs[index] = (heads_output, model.attentions_output[index].save())
        logits = model.logits.save()
    expected = {}
    for index in softmax_layers(model):
        expected[f"queries[{index}]"] = expected[f"rotated_queries[{index}]"] = (batch, heads_count, seq, head_dim)
        for name in ("keys", "values", "rotated_keys"):
            expected[f"{name}[{index}]"] = (batch, kv_heads, seq, head_dim)
        expected[f"heads_output[{index}]"] = (batch, seq, heads_count, head_dim)
    wrong = [
        f"{name} is {shapes[name]}, expected {shape}" for name, shape in expected.items() if name in shapes and shapes[name] != shape
    ]
    expect(not wrong, f"per-head shapes on a ({batch}, {seq}) probe: " + "; ".join(wrong) + ".")
    rotated_by_call = _rotary_outputs(model, inputs) if by_call else {}
    for index in (softmax_layers(model) if by_call else ()):
        _projections_feed_attention(model, seen, index, rotated_by_call.get(index))
    for index, (heads_output, attention_output) in outputs.items():
        module = output_projection(model, index, model.adapter.heads)._module
        with torch.no_grad():
            projected = module(heads_output.reshape(batch, seq, heads_count * head_dim))
        expect(
            torch.equal(projected, attention_output),
            f"heads_output[{index}] through `{projection}` differs from attentions_output[{index}]: "
            f"{where_differs(projected, attention_output)}.",
        )
    layer = softmax_layers(model)[-1]
    with torch.no_grad(), model.trace(inputs):
        model.heads_output[layer] = model.heads_output[layer].clone()
        identity_logits = model.logits.save()
    effect_inputs = _effect_probe(model).inputs(model_device(model))
    unedited_logits = _logits(model, effect_inputs)
    with torch.no_grad(), model.trace(effect_inputs):
        ablated = model.heads_output[layer].clone()
        ablated[:, :, ABLATED_HEAD] = 0
        model.heads_output[layer] = ablated
        ablated_logits = model.logits.save()
    expect(
        torch.equal(identity_logits, logits),
        f"writing heads_output[{layer}] back unchanged changed the logits: {where_differs(identity_logits, logits)}.",
    )
    expect(
        not torch.equal(ablated_logits, unedited_logits),
        f"zeroing head {ABLATED_HEAD} of heads_output[{layer}] left every real position's logits unchanged.",
    )
    with torch.no_grad(), model.trace(inputs):
        model.queries[layer] = model.queries[layer].clone()
        identity_logits = model.logits.save()
    with torch.no_grad(), model.trace(effect_inputs):
        model.queries[layer] = torch.zeros_like(model.queries[layer])
        zeroed_logits = model.logits.save()
    expect(
        torch.equal(identity_logits, logits),
        f"writing queries[{layer}] back unchanged changed the logits: {where_differs(identity_logits, logits)}.",
    )
    expect(
        not torch.equal(zeroed_logits, unedited_logits),
        f"zeroing queries[{layer}] left every real position's logits unchanged: the write does not reach attention.",
    )
    if by_call and Capability.ATTENTION_PROBABILITIES in model.adapter.capabilities and not _eager_refusal(model):
        _patterns_reproduce_probabilities(model, inputs)


def _eager_refusal(model: "StandardizedTransformer") -> Optional[str]:
    """Why the adapter refuses heads or probabilities under eager attention, where patterns are compared.

    A declaration may serve a config under sdpa and refuse it under eager (where eager
    attention takes a separate path the declaration does not hook): the comparison is
    then skipped with the adapter's reason, not reported as a failure.
    """
    with attention_implementation(model, "eager"):
        for field in ("heads", "attention"):
            spec = getattr(model.adapter, field, None)
            reason = spec.refuse(model.config) if spec is not None and spec.refuse is not None else None
            if reason:
                return f"adapter {model.adapter.name!r} refuses `{field}` under eager attention for this config: {reason}"
    return None


def _rotary_outputs(model: "StandardizedTransformer", inputs: dict) -> dict[int, dict[str, torch.Tensor]]:
    """Per layer where `heads.rotary_output` runs: queries/keys, what that call receives and returns."""
    spec = model.adapter.heads
    if spec.rotary_output is None:
        return {}
    layers = [
        index for index in softmax_layers(model)
        if first_level_label(attention_module(model, index, spec), spec.rotary_output) is not None
    ]
    seen: dict[int, dict[str, torch.Tensor]] = {}
    malformed: list[str] = []
    with torch.no_grad(), model.trace(inputs):
        for index in layers:
            queries, keys = model.queries[index].save(), model.keys[index].save()
            call = reach(attention_module(model, index, spec), spec.rotary_output, model.adapter, "heads.rotary_output")
            args, _ = call.operation.inputs
            output = call.operation.output
            if len(args) < 2 or not isinstance(output, (tuple, list)) or len(output) < 2:
                malformed.append(f"layer {index}: it receives {len(args)} positional argument(s) and returns a "
                                 f"{type(output).__name__}")
                continue
            seen[index] = {"queries": queries, "keys": keys, "received queries": args[0].save(),
                           "received keys": args[1].save(), "rotated queries": output[0].save(),
                           "rotated keys": output[1].save()}
            if len(args) >= 4 and all(isinstance(a, torch.Tensor) for a in args[2:4]) and args[2].shape == args[3].shape:
                # (cos, sin): a rotation has cos² + sin² = 1; YaRN multiplies both by its attention factor.
                seen[index]["scale"] = (args[2].float() ** 2 + args[3].float() ** 2).sqrt().save()
    expect(
        not malformed,
        f"`heads.rotary_output` ({spec.rotary_output.describe()}) must be a call receiving (queries, keys, ...) and "
        f"returning (queries, keys), rotated: " + "; ".join(malformed) + ".",
    )
    for index, values in seen.items():
        for name in ("queries", "keys"):
            expect(
                torch.equal(values[name], values[f"received {name}"]),
                f"{name}[{index}] is not what `heads.rotary_output` ({spec.rotary_output.describe()}) receives: "
                f"{where_differs(values[name], values[f'received {name}'])}.",
            )
    return seen


def _scaled_by_rotary(vectors: torch.Tensor, scale: Optional[torch.Tensor]) -> torch.Tensor:
    """``vectors`` times rotary's scale sqrt(cos² + sin²) where it is one number per position.

    A rotation has scale 1 and keeps norms; YaRN multiplies cos and sin by its attention
    factor, the same for every dimension. ``scale`` is (batch, seq, width) or (seq, width),
    shared by every head. None, or a scale that varies along the dimensions: unscaled.
    """
    if scale is None or scale.dim() not in (2, 3):
        return vectors
    per_position = scale[..., :1]
    tolerance = ROTARY_NORM_ULPS * torch.finfo(scale.dtype).eps
    if not torch.allclose(scale, per_position.expand_as(scale), atol=tolerance, rtol=0):
        return vectors
    try:
        return vectors * per_position.to(vectors.dtype).unsqueeze(-3)
    except RuntimeError:
        return vectors


def _projections_feed_attention(model: "StandardizedTransformer", seen: dict, index: int, rotary: Optional[dict]) -> None:
    """Values are what attention receives; queries and keys are its rotated ones before rotary.

    Rotary embedding rotates pairs of dimensions, so it keeps each head vector's
    norm: a pre-rotary value taken at the wrong point (before a q/k norm, say)
    has other norms than the rotated one. Where the family transforms the rotated
    queries and keys again, or rotary scales as well (`heads.rotary_output`), the
    norms are those of rotary's output, times the scale its cos and sin carry.
    """
    values, received = seen[f"values[{index}]"], seen[f"attention values[{index}]"]
    expect(
        torch.equal(values, received),
        f"values[{index}] differs from the values the attention function receives: {where_differs(values, received)}.",
    )
    for name in ("queries", "keys"):
        before = seen[f"{name}[{index}]"]
        after = rotary[f"rotated {name}"] if rotary is not None else seen[f"rotated_{name}[{index}]"]
        tolerance = ROTARY_NORM_ULPS * torch.finfo(before.dtype).eps * max(1.0, float(after.abs().max()))
        expected = _scaled_by_rotary(before, rotary.get("scale") if rotary is not None else None).norm(dim=-1)
        expect(
            torch.allclose(expected, after.norm(dim=-1), atol=tolerance, rtol=0),
            f"{name}[{index}] is not {'rotary output' if rotary is not None else f'rotated_{name}[{index}]'} before "
            f"rotary: the norms of its head vectors differ, {where_differs(expected, after.norm(dim=-1))}. "
            f"The adapter's `heads` points are at another value than the one rotary embedding is applied to"
            + ("" if rotary is not None else ", or the family transforms the rotated queries and keys before the "
               "attention call (declare `heads.rotary_output`)") + ".",
        )


def _patterns_reproduce_probabilities(model: "StandardizedTransformer", inputs: dict) -> None:
    """softmax(q·kᵀ·scaling + mask) of the rotated queries and keys is `attention_probabilities[i]`."""
    pairs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    with attention_implementation(model, "eager"), torch.no_grad(), model.trace(inputs):
        for index in softmax_layers(model):
            pattern = model.attention_patterns(index).save()
            pairs[index] = (pattern, model.attention_probabilities[index].save())
    for index, (pattern, probabilities) in pairs.items():
        tolerance = PATTERN_ULPS * torch.finfo(probabilities.dtype).eps
        expect(
            torch.allclose(pattern, probabilities, atol=tolerance, rtol=0),
            f"softmax of the rotated queries and keys (attention_patterns({index})) differs from "
            f"attention_probabilities[{index}]: {where_differs(pattern, probabilities)}.",
        )


@check("attention_patterns", requires=(Capability.HEADS,))
def attention_patterns(model: "StandardizedTransformer") -> None:
    """Patterns recomputed from rotated queries and keys equal eager probabilities, under eager and sdpa."""
    if model.adapter.heads.attention_call is None:
        raise CheckSkipped(
            f"adapter {model.adapter.name!r} declares no attention call for {model.adapter.model_type!r} (the family "
            f"computes attention by hand): there are no rotated queries and keys to recompute patterns from"
        )
    refusal = _eager_refusal(model)
    if refusal:
        raise CheckSkipped(f"{refusal}; the patterns are compared under eager attention")
    probe = current_probe(model)
    inputs = probe.inputs(model_device(model))
    with attention_implementation(model, "eager"):
        reference = _hf_attentions(model)
    for implementation in ("eager", "sdpa"):
        try:
            with attention_implementation(model, implementation):
                patterns = _patterns(model, inputs)
        except (ValueError, NotImplementedError) as error:
            if implementation == "eager" or "attention" not in str(error):
                raise
            raise CheckSkipped(
                f"under eager attention the patterns equal HuggingFace's probabilities; HuggingFace refuses "
                f"{implementation} attention for this model, so it was not compared: {error}"
            ) from None
        for depth, (index, pattern) in enumerate(sorted(patterns.items()), start=1):
            expected = reference[index]
            # Under eager both sides run the same arithmetic. Under sdpa the patterns come from a
            # separate forward whose hidden states drift from eager's by rounding, layer over layer
            # (measured on a 30-layer model: 2.2e-6 at the 4th layer), so the bound grows with depth.
            drift = depth if implementation != "eager" else 1
            tolerance = PATTERN_ULPS * torch.finfo(expected.dtype).eps * drift
            expect(
                tuple(pattern.shape) == tuple(expected.shape)
                and torch.allclose(pattern, expected, atol=tolerance, rtol=0),
                f"attention_patterns({index}) under {implementation} attention differs from HuggingFace's eager "
                f"probabilities of the same weights beyond {tolerance:.3g} ({PATTERN_ULPS} ulp x {drift} for its depth): "
                f"shape {tuple(pattern.shape)} vs {tuple(expected.shape)}"
                + (f", {where_differs(pattern, expected)}" if pattern.shape == expected.shape else "")
                + ". The adapter's `heads.attention_call` label, or the scaling/soft-cap/mask it passes, "
                "is not what the attention uses.",
            )


def _patterns(model: "StandardizedTransformer", inputs: dict) -> dict[int, torch.Tensor]:
    patterns: dict[int, torch.Tensor] = {}
    with torch.no_grad(), model.trace(inputs):
        for index in softmax_layers(model):
            patterns[index] = model.attention_patterns(index).save()
    return patterns
