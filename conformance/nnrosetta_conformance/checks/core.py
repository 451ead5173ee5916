"""The base conformance checks: the guarantees every adapter makes, whatever its family.

Each check feeds the model the suite's left-padded probe batch and compares what
the standard interface gives with what the plain HuggingFace model computes, so
a failure names the accessor, the layer and the numbers that disagree.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Optional

import torch

from nnrosetta.accessors import sublayer_site
from nnrosetta.errors import RenamingError
from nnrosetta.layer_kinds import served_accessors
from nnrosetta.validation import check_structure

from .base import (
    CheckFailure,
    CheckSkipped,
    Probe,
    before_suite,
    check,
    current_probe,
    expect,
    model_device,
    suite_state,
    where_differs,
)

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer

#: Per-layer accessors in the order the forward reaches them.
LAYER_ACCESSORS = (
    "layers_input",
    "attentions_input",
    "attentions_output",
    "mlps_input",
    "mlps_output",
    "layers_output",
)
#: Accessors whose edit must reach the logits.
EDITED_ACCESSORS = ("attentions_output", "mlps_output", "layers_output")
GENERATED_TOKENS = 3
#: Token columns of the short probe that the checks with one probe copy per edit run on.
SHORT_PROBE_WIDTH = 3
#: Float tolerances, in units of the logits' dtype epsilon at the logits' scale.
PROJECTION_ULPS = 64
PADDING_ULPS = 1024


def _inputs(model: "StandardizedTransformer") -> dict[str, torch.Tensor]:
    return current_probe(model).inputs(model_device(model))


def _tolerance(reference: torch.Tensor, ulps: int) -> float:
    scale = max(1.0, float(reference.detach().abs().max()))
    return ulps * torch.finfo(reference.dtype).eps * scale


def plain_logits(model: "StandardizedTransformer") -> torch.Tensor:
    """Logits of an nnsight trace of the probe with no intervention."""
    with torch.no_grad(), model.trace(_inputs(model)):
        logits = model.logits.save()
    return logits


def clean_logits(model: "StandardizedTransformer") -> torch.Tensor:
    """The probe's plain logits: the ones recorded before the suite, else a fresh trace."""
    recorded = suite_state().get("state_before")
    return recorded["logits"] if recorded is not None else plain_logits(model)


def short_probe(probe: Probe, width: int = SHORT_PROBE_WIDTH) -> Probe:
    """The probe's last ``width`` columns, of its longest row and of its most padded row.

    Checks that repeat the probe once per edit (90 copies on a 30-layer model) run
    on this: its rows still cover a row without padding and a left-padded one, and
    every row ends in a real token, at a fraction of the full probe's cost.
    """
    lengths = probe.attention_mask.sum(-1)
    rows = sorted({int(lengths.argmax()), int(lengths.argmin())})
    ids, mask = probe.input_ids[rows, -width:], probe.attention_mask[rows, -width:]
    return Probe(ids.contiguous(), mask.contiguous())


def read_plain(
    model: "StandardizedTransformer", names: tuple[str, ...] = LAYER_ACCESSORS, ends: bool = True
) -> dict[str, Any]:
    """One plain trace of the probe: ``names[i]`` for every layer, keyed ``"name[i]"``.

    ``ends`` adds the inputs, token embeddings, the final norm's input and output,
    lm_head's input, the logits and next_token_probs. Values are read in forward order.
    """
    reads: dict[str, Any] = {}
    absent = model.adapter.absent
    with torch.no_grad(), model.trace(_inputs(model)):
        if ends:
            reads["input_ids"] = model.input_ids.save()
            reads["attention_mask"] = model.attention_mask.save()
            reads["token_embeddings"] = _saved(model.token_embeddings)
        for index in range(model.num_layers):
            for name in served_accessors(model, index, names):
                reads[f"{name}[{index}]"] = _saved(getattr(model, name)[index])
        if ends:
            if "ln_final" not in absent:
                reads["ln_final.input"] = _saved(model.ln_final.input)
                reads["ln_final.output"] = _saved(model.ln_final.output)
            if "lm_head" not in absent:
                reads["lm_head.input"] = _saved(model.lm_head.input)
            reads["logits"] = model.logits.save()
            reads["next_token_probs"] = model.next_token_probs.save()
    return reads


def _saved(value: Any) -> Any:
    return value.save() if isinstance(value, torch.Tensor) else value


def plain_reads(model: "StandardizedTransformer") -> Optional[dict[str, Any]]:
    """`read_plain` of everything, traced once per suite and shared by the checks that only read.

    None when that trace raises: each check then traces what it reads on its own,
    so an error is reported by the checks whose reads fail, as when each traced alone.
    """
    state = suite_state()
    if "plain_reads" not in state:
        try:
            state["plain_reads"] = read_plain(model)
        except Exception:  # noqa: BLE001 - the checks re-read alone and report it
            state["plain_reads"] = None
    return state["plain_reads"]


def _shape(value: Any) -> Any:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


# -- structure -------------------------------------------------------------------


@check("structure", gate=True)
def structure(model: "StandardizedTransformer") -> None:
    """Every standard module resolves, and the layers are homogeneous."""
    if model.adapter.layer_kinds is not None:
        from .kinds import structure_by_kind  # hybrid layers: homogeneous within each declared kind

        return structure_by_kind(model)
    try:
        check_structure(model)
    except RenamingError as error:
        raise CheckFailure(str(error)) from None
    for name in ("layers", "self_attn"):
        classes: dict[str, list[int]] = {}
        for index in range(model.num_layers):
            module = model.layers[index] if name == "layers" else sublayer_site(model, index, "self_attn", "output")
            classes.setdefault(type(module._module).__name__, []).append(index)
        expect(
            len(classes) == 1,
            f"`{name}` is not homogeneous: expected one module class across the {model.num_layers} layers, "
            f"saw " + "; ".join(f"{cls} at layers {where}" for cls, where in classes.items())
            + ". The rename map points the standard name at modules of different kinds.",
        )


# -- shapes ----------------------------------------------------------------------


@check("accessor_shapes")
def accessor_shapes(model: "StandardizedTransformer") -> None:
    """Every accessor is a (batch, seq, hidden) tensor, logits (batch, seq, vocab)."""
    probe = current_probe(model)
    batch, seq = probe.batch_size, probe.sequence_length
    reads = plain_reads(model) or read_plain(model)
    input_ids, attention_mask = reads["input_ids"], reads["attention_mask"]
    names = ["token_embeddings"] + [
        f"{name}[{index}]" for index in range(model.num_layers) for name in served_accessors(model, index, LAYER_ACCESSORS)
    ]
    seen: dict[str, Any] = {name: _shape(reads[name]) for name in names + ["logits", "next_token_probs"]}
    probability_sums = reads["next_token_probs"].sum(-1)
    hidden = (batch, seq, model.hidden_size)
    expected = {name: hidden for name in seen}
    expected["logits"] = (batch, seq, model.vocab_size)
    expected["next_token_probs"] = (batch, model.vocab_size)
    wrong = [f"{name} is {seen[name]}, expected {shape}" for name, shape in expected.items() if seen[name] != shape]
    expect(
        not wrong,
        f"on a ({batch}, {seq}) probe with hidden_size={model.hidden_size}, vocab_size={model.vocab_size}: "
        + "; ".join(wrong)
        + f". The rename map ({dict(model.adapter.rename)}) points these names at modules that do not carry "
        "the residual-stream state, or the adapter's config_keys read the wrong sizes.",
    )
    expect(
        torch.equal(input_ids.cpu(), probe.input_ids),
        f"input_ids inside the trace differ from the ids passed: saw {input_ids.tolist()}, "
        f"expected {probe.input_ids.tolist()}.",
    )
    expect(
        attention_mask is not None and torch.equal(attention_mask.cpu(), probe.attention_mask),
        f"attention_mask inside the trace differs from the mask passed: saw "
        f"{None if attention_mask is None else attention_mask.tolist()}, expected {probe.attention_mask.tolist()}.",
    )
    expect(
        torch.allclose(probability_sums.float(), torch.ones_like(probability_sums.float()), atol=1e-3),
        f"next_token_probs rows should sum to 1, saw sums {probability_sums.tolist()}.",
    )


# -- fidelity --------------------------------------------------------------------


def reference_positions(model: "StandardizedTransformer", device: Any) -> dict[str, torch.Tensor]:
    """The position_ids a trace passes for the probe: none where the model counts its own."""
    if model.adapter.positions_from_inputs:
        return {}
    return {"position_ids": current_probe(model).position_ids.to(device)}


def _positions_named(model: "StandardizedTransformer") -> str:
    if model.adapter.positions_from_inputs:
        return ", no position_ids (the adapter declares positions_from_inputs)"
    return " and position_ids = cumsum(mask) - 1"


@check("fidelity")
def fidelity(model: "StandardizedTransformer") -> None:
    """Logits are bit-identical to the plain HuggingFace model on the same left-padded batch."""
    probe = current_probe(model)
    device = model_device(model)
    traced = clean_logits(model)
    with torch.no_grad():
        reference = model._module(**probe.inputs(device), **reference_positions(model, device)).logits
    expect(
        traced.shape == reference.shape,
        f"traced logits have shape {tuple(traced.shape)}, the plain HuggingFace model gives {tuple(reference.shape)}.",
    )
    expect(
        torch.equal(traced, reference),
        f"traced logits are not bit-identical to the plain HuggingFace model's (called with input_ids, "
        f"attention_mask{_positions_named(model)}): {where_differs(traced, reference)}. "
        f"Something in the wrapping changes the computation.",
    )


# -- writes ----------------------------------------------------------------------


def _write_back(model: "StandardizedTransformer", names: tuple[str, ...], embeddings: bool) -> torch.Tensor:
    """Logits of a trace that writes a copy of each named accessor's own value back."""
    with torch.no_grad(), model.trace(_inputs(model)):
        if embeddings:
            model.token_embeddings = model.token_embeddings.clone()
        for index in range(model.num_layers):
            for name in served_accessors(model, index, names):
                accessor = getattr(model, name)
                accessor[index] = accessor[index].clone()
        logits = model.logits.save()
    return logits


@check("write_identity")
def write_identity(model: "StandardizedTransformer") -> None:
    """Writing each accessor's own value back leaves the logits bit-identical."""
    clean = clean_logits(model)
    written = _write_back(model, LAYER_ACCESSORS, embeddings=True)
    if torch.equal(written, clean):
        return
    culprits = [name for name in LAYER_ACCESSORS if not torch.equal(_write_back(model, (name,), False), clean)]
    if not torch.equal(_write_back(model, (), True), clean):
        culprits.insert(0, "token_embeddings")
    raise CheckFailure(
        f"writing each accessor's own value back changed the logits ({where_differs(written, clean)}); "
        f"the writes that change them on their own: {', '.join(culprits) or 'none alone (only together)'}. "
        f"The accessor repacks the module's value in a form the family does not read the same way."
    )


@check("write_effect")
def write_effect(model: "StandardizedTransformer") -> None:
    """Changing layers_output[i], attentions_output[i], mlps_output[i] changes the logits."""
    # One forward: the short probe repeated once per edit (plus a clean copy); copy j gets edit j alone.
    probe = short_probe(current_probe(model))
    edits = [(name, index) for index in range(model.num_layers) for name in served_accessors(model, index, EDITED_ACCESSORS)]
    rows = probe.batch_size
    copies = len(edits) + 1
    device = model_device(model)
    batch = {
        "input_ids": probe.input_ids.repeat(copies, 1).to(device),
        "attention_mask": probe.attention_mask.repeat(copies, 1).to(device),
    }
    direction = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), model.trace(batch):
        for copy, (name, index) in enumerate(edits, start=1):
            value = getattr(model, name)[index]
            edited = value.clone()
            part = slice(copy * rows, (copy + 1) * rows)
            scale = float(value[part, -1].detach().abs().max()) + 1.0
            edited[part, -1] += scale * direction.to(value.device, value.dtype)
            getattr(model, name)[index] = edited
        logits = model.logits.save()
    clean = logits[:rows]
    tolerance = _tolerance(clean, PROJECTION_ULPS)
    # Padding positions attend to nothing real; some families let them see later tokens.
    real = probe.attention_mask.bool().to(clean.device)[:, :-1]
    problems = []
    for copy, (name, index) in enumerate(edits, start=1):
        edited_logits = logits[copy * rows : (copy + 1) * rows]
        last_change = (edited_logits[:, -1] - clean[:, -1]).abs().amax(-1)
        if not bool((last_change > tolerance).all()):
            problems.append(
                f"{name}[{index}]: editing the last position left the last logits unchanged "
                f"(max |Δ| per row {[round(float(v), 6) for v in last_change]}, tolerance {tolerance:.3g})"
            )
        earlier = (edited_logits[:, :-1] - clean[:, :-1]).abs()[real]
        if earlier.numel() and float(earlier.max()) > tolerance:
            problems.append(
                f"{name}[{index}]: editing the last position changed earlier tokens' logits "
                f"(max |Δ| = {float(earlier.max()):.3g} > {tolerance:.3g})"
            )
    expect(
        not problems,
        "an edit of the last position should change the last logits and no earlier real token's: "
        + "; ".join(problems)
        + ". The accessor reads or writes a value the forward does not use downstream.",
    )


# -- consistency -----------------------------------------------------------------


@check("residual_chain")
def residual_chain(model: "StandardizedTransformer") -> None:
    """layers_input[i+1] equals layers_output[i]."""
    if model.num_layers < 2:
        raise CheckSkipped("the model has one layer: there is no pair of consecutive layers to compare")
    reads = plain_reads(model) or read_plain(model, ("layers_input", "layers_output"), ends=False)
    pairs = [(reads[f"layers_output[{i}]"], reads[f"layers_input[{i + 1}]"]) for i in range(model.num_layers - 1)]
    broken = [
        f"layers_input[{i + 1}] vs layers_output[{i}]: {where_differs(following, output)}"
        if following.shape == output.shape
        else f"layers_input[{i + 1}] is {tuple(following.shape)}, layers_output[{i}] is {tuple(output.shape)}"
        for i, (output, following) in enumerate(pairs)
        if not (following.shape == output.shape and torch.equal(following, output))
    ]
    expect(
        not broken,
        "each layer's input should be the previous layer's output exactly: "
        + "; ".join(broken)
        + ". The family changes the residual stream between layers, or `layers` is not the decoder-block list.",
    )


@check("final_projection")
def final_projection(model: "StandardizedTransformer") -> None:
    """project_on_vocab(layers_output[-1]) equals the logits (to float tolerance)."""
    reads = plain_reads(model)
    if reads is not None:
        last, logits = reads[f"layers_output[{model.num_layers - 1}]"], reads["logits"]
    else:
        with torch.no_grad(), model.trace(_inputs(model)):
            last = model.layers_output[-1].save()
            logits = model.logits.save()
    with torch.no_grad():
        projected = model.project_on_vocab(last)
    expect(
        projected.shape == logits.shape,
        f"project_on_vocab(layers_output[-1]) has shape {tuple(projected.shape)}, logits {tuple(logits.shape)}.",
    )
    tolerance = _tolerance(logits, PROJECTION_ULPS)
    difference = float((projected.float() - logits.float()).abs().max())
    if model.adapter.final_projection is not None:
        through = f"the adapter's final_projection ({getattr(model.adapter.final_projection, '__name__', '?')})"
        fix = "The declared final_projection does not reproduce the family's; fix it."
    else:
        through = "lm_head(ln_final(h)) (the adapter declares no final_projection)"
        fix = "The family does more between the last layer and the logits; declare it in the adapter's `final_projection`."
    expect(
        difference <= tolerance,
        f"project_on_vocab(layers_output[-1]) through {through} differs from the logits: "
        f"{where_differs(projected, logits)} > tolerance {tolerance:.3g}. {fix}",
    )


@check("padding_invariance")
def padding_invariance(model: "StandardizedTransformer") -> None:
    """Last-token logits of a left-padded batch match each prompt alone; declared otherwise, equal plain HF's."""
    probe = current_probe(model)
    batched = clean_logits(model)[:, -1]
    tolerance = _tolerance(batched, PADDING_ULPS)
    device = model_device(model)
    differences = []
    for row in range(probe.batch_size):
        ids = probe.row(row).to(device)
        with torch.no_grad(), model.trace({"input_ids": ids, "attention_mask": torch.ones_like(ids)}):
            alone = model.logits[:, -1].save()
        padding = probe.sequence_length - ids.shape[1]
        differences.append((row, padding, float((alone[0].float() - batched[row].float()).abs().max())))
    declared = model.adapter.not_padding_invariant
    if declared is not None:
        _declared_not_padding_invariant(model, declared, differences, tolerance)
        return
    problems = [f"row {row} ({padding} padding tokens): max |Δ| = {d:.3g}" for row, padding, d in differences
                if d > tolerance]
    expect(
        not problems,
        f"last-token logits in the left-padded batch should match each prompt alone within "
        f"{PADDING_ULPS} ulp of the logits' scale ({tolerance:.3g}): "
        + "; ".join(problems)
        + ". Padding leaks into real tokens: check the attention mask and position ids the family uses.",
    )


def _declared_not_padding_invariant(
    model: "StandardizedTransformer", reason: str, differences: list[tuple[int, int, float]], tolerance: float
) -> None:
    """The declaration's three claims: served == plain HF on the padded batch, unpadded rows unchanged, padding leaks."""
    probe = current_probe(model)
    device = model_device(model)
    with torch.no_grad():
        reference = model._module(**probe.inputs(device), **reference_positions(model, device)).logits[:, -1]
    served = clean_logits(model)[:, -1]
    expect(
        torch.equal(served, reference),
        f"the adapter declares the model not padding-invariant ({reason}), so the served last-token logits of "
        f"the left-padded batch must equal the plain HuggingFace model's on that batch bit for bit; they differ: "
        f"{where_differs(served, reference)}. The wrapping changes what padding does.",
    )
    unpadded = [f"row {row}: max |Δ| = {d:.3g}" for row, padding, d in differences if padding == 0 and d > tolerance]
    expect(
        not unpadded,
        f"the adapter declares the model not padding-invariant ({reason}), yet a row without padding must still "
        f"match its prompt run alone within {tolerance:.3g}: " + "; ".join(unpadded)
        + ". Rows of the batch leak into each other, which no padding explains.",
    )
    padded = [(row, d) for row, padding, d in differences if padding > 0]
    expect(
        any(d > tolerance for _, d in padded),
        f"the adapter declares the model not padding-invariant ({reason}), but every padded row matches its prompt "
        f"run alone within {tolerance:.3g} ("
        + (", ".join(f"row {row}: max |Δ| = {d:.3g}" for row, d in padded) or "the probe has no padded row")
        + "). Remove the adapter's `not_padding_invariant` declaration for this type: the model is padding-invariant.",
    )


# -- gradients and generation ----------------------------------------------------


@check("gradients")
def gradients(model: "StandardizedTransformer") -> None:
    """A backward pass from a logit reaches layers_output[i] with a gradient of its shape."""
    parameters = list(model._module.parameters())
    flags = [p.requires_grad for p in parameters]
    outputs: list[torch.Tensor] = []
    grads: dict[int, Any] = {}
    try:
        for parameter in parameters:
            parameter.requires_grad_(False)
        with torch.enable_grad(), model.trace(_inputs(model)):
            model.token_embeddings = model.token_embeddings.detach().clone().requires_grad_(True)
            for index in range(model.num_layers):
                outputs.append(model.layers_output[index])
            logits = model.logits
            target = logits[0, -1, logits[0, -1].argmax()]
            with target.backward():
                for index in reversed(range(model.num_layers)):
                    grads[index] = outputs[index].grad.save()
    finally:
        for parameter, flag in zip(parameters, flags):
            parameter.requires_grad_(flag)
    problems = []
    for index in range(model.num_layers):
        grad, output = grads.get(index), outputs[index]
        if grad is None:
            problems.append(f"layers_output[{index}] received no gradient")
        elif grad.shape != output.shape:
            problems.append(f"layers_output[{index}].grad is {tuple(grad.shape)}, expected {tuple(output.shape)}")
        elif not bool(torch.isfinite(grad).all()):
            problems.append(f"layers_output[{index}].grad holds non-finite values")
        elif float(grad[0, -1].abs().max()) == 0.0:
            problems.append(f"layers_output[{index}].grad is zero at the position the logit was taken from")
        elif grad.shape[0] > 1 and float(grad[1:].abs().max()) != 0.0:
            problems.append(f"layers_output[{index}].grad leaks into other batch rows")
    expect(
        not problems,
        "a backward pass from the last logit of row 0 should reach every layers_output with a gradient "
        "of its shape, nonzero at that position and zero in other rows: " + "; ".join(problems) + ".",
    )


#: Greedy generation of the raw argmax: a checkpoint's generation config may force tokens (an EOS at
#: the last step, a first token) or suppress and penalise them, which would hide whether the edit
#: reached every step. None turns each of those logits processors off.
NEUTRAL_GENERATION = {
    "forced_eos_token_id": None, "forced_bos_token_id": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "bad_words_ids": None, "no_repeat_ngram_size": None,
    "repetition_penalty": None, "sequence_bias": None,
}


def _generate(model: "StandardizedTransformer", push: Optional[torch.Tensor]) -> tuple[torch.Tensor, list]:
    """Generate GENERATED_TOKENS greedily; ``push`` is added to layers_output[-1] at every step."""
    probe = current_probe(model)
    steps: list = []
    options = {"max_new_tokens": GENERATED_TOKENS, "min_new_tokens": GENERATED_TOKENS, "do_sample": False,
               **NEUTRAL_GENERATION}
    if model.tokenizer.pad_token_id is not None:
        options["pad_token_id"] = model.tokenizer.pad_token_id
    with torch.no_grad(), model.generate(probe.inputs(model_device(model)), **options) as tracer:
        for _ in tracer.iter[:GENERATED_TOKENS]:
            hidden = model.layers_output[-1]
            steps.append(tuple(hidden.shape))
            if push is not None:
                model.layers_output[-1] = hidden + push.to(hidden.device, hidden.dtype)
        result = tracer.result.save()
    return result[:, probe.sequence_length :].cpu(), steps


def _forced_token(model: "StandardizedTransformer", direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The next tokens when a push along ``direction`` dwarfing the last hidden state is added; and the push."""
    with torch.no_grad(), model.trace(_inputs(model)):
        hidden = model.layers_output[-1]
        push = (direction * 1e3 * (float(hidden.detach().abs().max()) + 1.0)).save()
        model.layers_output[-1] = hidden + push.to(hidden.device, hidden.dtype)
        chosen = model.logits[:, -1].argmax(-1).save()
    return chosen.cpu(), push


@check("generation")
def generation(model: "StandardizedTransformer") -> None:
    """Interventions apply at every step of a 3-token generation."""
    clean, steps = _generate(model, None)
    expect(
        len(steps) == GENERATED_TOKENS,
        f"tracer.iter[:{GENERATED_TOKENS}] reached layers_output[-1] at {len(steps)} steps, expected {GENERATED_TOKENS}.",
    )
    special = set(model.tokenizer.all_special_ids)
    generator = torch.Generator().manual_seed(0)
    # A push that dwarfs the hidden state makes the next token that of the push alone;
    # find one whose token the clean generation never produces, so each step shows it.
    for _attempt in range(16):
        forced, push = _forced_token(model, torch.randn(model.hidden_size, generator=generator))
        token = int(forced[0])
        if bool((forced == token).all()) and token not in special and not bool((clean == token).any()):
            break
    else:
        raise CheckFailure(
            "could not find a steering direction whose forced token differs from the clean generation in 16 tries; "
            f"the last layer's output seems not to reach the logits (forced tokens seen: {forced.tolist()})."
        )
    steered, steps = _generate(model, push)
    missed = [
        f"step {step}: generated {steered[:, step].tolist()}"
        for step in range(steered.shape[1])
        if not bool((steered[:, step] == token).all())
    ]
    expect(
        steered.shape[1] == GENERATED_TOKENS and not missed,
        f"an edit of layers_output[-1] applied at every step of a {GENERATED_TOKENS}-token generation should "
        f"force token {token} at each step in every row (clean generation: {clean.tolist()}); "
        + ("; ".join(missed) or f"only {steered.shape[1]} tokens were generated")
        + ". The intervention does not apply at every generation step.",
    )


# -- state -----------------------------------------------------------------------


def _fingerprint(model: "StandardizedTransformer") -> dict[str, Any]:
    """Weights (a checksum per tensor), requires_grad flags, training mode, and the probe's logits."""
    hashes = {}
    for name, tensor in [*model._module.named_parameters(), *model._module.named_buffers()]:
        data = tensor.detach().cpu().contiguous().reshape(-1)
        # CRC-32 of the tensor's bytes, read in place: any realistic change of a weight changes it,
        # and it reads ~3 GB/s where sha256 of a bytes copy read ~0.3 (the weights are hashed twice).
        hashes[name] = zlib.crc32(data.view(torch.uint8).numpy()) if data.numel() else 0
    return {
        "hashes": hashes,
        "requires_grad": {n: p.requires_grad for n, p in model._module.named_parameters()},
        "training": model._module.training,
        "logits": plain_logits(model),
    }


@before_suite
def record_state(model: "StandardizedTransformer") -> None:
    """Remember the weights and a plain run's logits so `state_restored` can compare."""
    suite_state()["state_before"] = _fingerprint(model)


@check("state_restored", last=True)
def state_restored(model: "StandardizedTransformer") -> None:
    """After the whole suite, weights are unchanged and a plain run gives the same logits."""
    state = suite_state()
    before = state.get("state_before")
    if before is None and "error:record_state" in state:
        raise CheckFailure(f"the state could not be recorded before the suite: {state['error:record_state']}")
    if before is None:
        raise CheckSkipped("no state was recorded before the suite; run it through nnrosetta_conformance.run")
    after = _fingerprint(model)
    changed = [name for name, digest in before["hashes"].items() if after["hashes"].get(name) != digest]
    changed += [name for name in after["hashes"] if name not in before["hashes"]]
    flags = [name for name, flag in before["requires_grad"].items() if after["requires_grad"].get(name) != flag]
    expect(not changed, f"the suite changed weights or buffers: {', '.join(changed[:10])}.")
    expect(not flags, f"the suite changed requires_grad of: {', '.join(flags[:10])}.")
    expect(
        before["training"] == after["training"],
        f"the suite left the model in {'training' if after['training'] else 'eval'} mode; it was "
        f"{'training' if before['training'] else 'eval'}.",
    )
    expect(
        torch.equal(before["logits"], after["logits"]),
        f"a plain run after the suite gives other logits than before it: "
        f"{where_differs(after['logits'], before['logits'])}. An intervention was left installed.",
    )
