"""Conformance checks of layer kinds: each layer is served as the kind its adapter declares.

Hybrid and recurrent models mix softmax attention with linear attention, state-space
scans, convolutions and recurrent cells. The adapter declares each layer's kind
(`nnrosetta.layer_kinds.LayerKinds`); these checks tie the declaration to the live model:

- the ``structure`` gate (`structure_by_kind`): layers and mixers are one class per kind, softmax layers' mixers
  form softmax attention and the others do not (a delta net called ``self_attn`` fails);
- ``kinds_shapes``: ``mixers_input/output[i]`` (and ``parallel_mixers_*[i]`` where a kind declares a
  `ParallelMixer`) are (batch, seq, hidden) on every mixing layer;
- ``kinds_writes``: writing each mixer's value back changes nothing, editing its output
  at the last position changes the last logits only;
- ``kinds_residual``: layers_output = layers_input + mixers_output (+ mlps_output), through
  the declared post norms for a sandwich residual and the declared scales (plus the parallel
  mixer's scaled output where declared), and
  layers_input[i+1] = layers_output[i];
- ``kinds_locality``: every mixer reads a per-token function of the layer input (causal where a
  declared `mixer_input_branches` module adds into it), mixes tokens causally; MLPs act per token;
- ``kinds_generation``: an edit of a mixer's output at every generation step equals the same
  edit made by a forward hook on the plain HuggingFace model's ``generate`` (recurrent and
  convolution state carried in the cache).

On a model whose adapter declares no kinds (every layer softmax attention) ``mixers_*`` are
``attentions_*``: only ``kinds_shapes`` runs, the base checks cover the rest.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

import torch

from nnrosetta.accessors import module_at
from nnrosetta.errors import RenamingError
from nnrosetta.layer_kinds import (
    KIND_DOCS,
    MLP_ONLY,
    SOFTMAX_KINDS,
    check_kind_structure,
    declared_kinds,
    mixer_module,
    served_accessors,
)

from .base import CheckFailure, CheckSkipped, check, current_probe, expect, model_device, where_differs
from .meaning import _declared_sum, _layer_attribute, _scale

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer

#: Tolerance of sums and locality comparisons, in ulps of the compared values' scale.
SUM_ULPS = 256
EFFECT_ULPS = 64
GENERATED_TOKENS = 3
#: Words in a mixer's forward that show it forms softmax attention.
SOFTMAX_MARKERS = ("attention_interface", "softmax", "scaled_dot_product_attention", "eager_attention_forward")


def _tolerance(ulps: int, *tensors: torch.Tensor) -> float:
    scale = max(1.0, *(float(t.detach().abs().max()) for t in tensors if t.numel()))
    return ulps * torch.finfo(tensors[0].dtype).eps * scale


def _inputs(model: "StandardizedTransformer") -> dict[str, torch.Tensor]:
    return current_probe(model).inputs(model_device(model))


def _declared(model: "StandardizedTransformer") -> None:
    if model.adapter.layer_kinds is None:
        raise CheckSkipped("the adapter declares no layer kinds: every mixer is the softmax attention the base checks cover")


def _mixing_layers(model: "StandardizedTransformer") -> list[int]:
    return [i for i in range(model.num_layers) if served_accessors(model, i, ("mixers_output",))]


def _parallel_layers(model: "StandardizedTransformer") -> list[int]:
    """The layers whose kind declares a `ParallelMixer` (a second token mixer beside the first)."""
    return [i for i in range(model.num_layers) if served_accessors(model, i, ("parallel_mixers_output",))]


def _parallel_outputs(model: "StandardizedTransformer", layers: list[int]) -> dict[int, torch.Tensor]:
    """``parallel_mixers_output[i]`` of the probe, in a trace of their own (their order beside the mixer is the family's)."""
    saved: dict[int, torch.Tensor] = {}
    if layers:
        with torch.no_grad(), model.trace(_inputs(model)):
            for index in layers:
                saved[index] = model.parallel_mixers_output[index].save()
    return saved


def _forms_softmax(module: torch.nn.Module) -> bool:
    try:
        source = inspect.getsource(type(module).forward)
    except (OSError, TypeError):
        return True  # no source to read: nothing to contradict the declaration
    return any(marker in source for marker in SOFTMAX_MARKERS)


def structure_by_kind(model: "StandardizedTransformer") -> None:
    """The `structure` gate for declared kinds: paths resolve, one class per kind, softmax where declared."""
    try:
        check_kind_structure(model)
    except RenamingError as error:
        raise CheckFailure(str(error)) from None
    kinds = declared_kinds(model)
    problems = []
    mixer_classes: dict[str, dict[str, list[int]]] = {}
    for index, kind in enumerate(kinds):
        if kind == MLP_ONLY:
            continue
        module = mixer_module(model, index)._module
        mixer_classes.setdefault(kind, {}).setdefault(type(module).__name__, []).append(index)
        softmax = _forms_softmax(module)
        if kind in SOFTMAX_KINDS and not softmax:
            problems.append(
                f"layer {index} is declared {kind!r} but its mixer {type(module).__name__}'s forward forms no softmax "
                f"attention (none of {', '.join(SOFTMAX_MARKERS)})"
            )
        if kind not in SOFTMAX_KINDS and softmax and "attention_interface" in inspect.getsource(type(module).forward):
            problems.append(
                f"layer {index} is declared {kind!r} ({KIND_DOCS[kind]}) but its mixer {type(module).__name__} calls "
                f"an attention interface: it is softmax attention"
            )
    for index in _parallel_layers(model):
        module = module_at(model.layers[index], model.adapter.layer_kinds.parallel_mixers[kinds[index]].path)._module
        forward = inspect.getsource(type(module).forward) if _forms_softmax(module) else ""
        if "attention_interface" in forward:
            problems.append(f"layer {index}'s parallel mixer {type(module).__name__} calls an attention interface: "
                            f"it is softmax attention, not the declared "
                            f"{model.adapter.layer_kinds.parallel_mixers[kinds[index]].kind!r}")
    for kind, classes in mixer_classes.items():
        if len(classes) > 1:
            problems.append(
                f"the {kind!r} layers' mixers are of several classes ("
                + "; ".join(f"{cls} at layers {where}" for cls, where in classes.items()) + ")"
            )
    softmax_classes = {c for k, cl in mixer_classes.items() if k in SOFTMAX_KINDS for c in cl}
    other_classes = {c for k, cl in mixer_classes.items() if k not in SOFTMAX_KINDS for c in cl}
    shared = softmax_classes & other_classes
    if shared:
        problems.append(f"mixer class(es) {', '.join(sorted(shared))} serve both softmax and other kinds")
    expect(
        not problems,
        f"the declared layer kinds {list(kinds)} do not fit the model: " + "; ".join(problems)
        + ". Fix the adapter's `layer_kinds` (the config key it reads, or the mixer path of each kind).",
    )


@check("kinds_shapes")
def kinds_shapes(model: "StandardizedTransformer") -> None:
    """mixers_input[i] and mixers_output[i] are (batch, seq, hidden) on every layer with a token mixer."""
    probe = current_probe(model)
    seen: dict[str, Any] = {}
    layers = _mixing_layers(model)
    expect(bool(layers) or all(k == MLP_ONLY for k in declared_kinds(model)), "no layer serves mixers_output.")
    with torch.no_grad(), model.trace(_inputs(model)):
        for index in layers:
            for name in ("mixers_input", "mixers_output"):
                value = getattr(model, name)[index]
                seen[f"{name}[{index}]"] = tuple(value.shape)
    parallel = _parallel_layers(model)
    if parallel:
        with torch.no_grad(), model.trace(_inputs(model)):
            for index in parallel:
                for name in ("parallel_mixers_input", "parallel_mixers_output"):
                    seen[f"{name}[{index}]"] = tuple(getattr(model, name)[index].shape)
    expected = (probe.batch_size, probe.sequence_length, model.hidden_size)
    wrong = [f"{name} is {shape}" for name, shape in seen.items() if shape != expected]
    expect(not wrong, f"expected {expected} (batch, seq, hidden): " + "; ".join(wrong) + ".")


@check("kinds_writes")
def kinds_writes(model: "StandardizedTransformer") -> None:
    """Writing each mixer's input and output back changes nothing; editing its last position moves only the last logits."""
    _declared(model)
    layers = _mixing_layers(model)
    if not layers:
        raise CheckSkipped("no layer has a token mixer")
    _writes(model, layers, "mixers")
    _writes(model, _parallel_layers(model), "parallel_mixers")


def _writes(model: "StandardizedTransformer", layers: list[int], mixers: str) -> None:
    """`kinds_writes` on ``{mixers}_input/output[i]`` of ``layers`` (``"mixers"`` or ``"parallel_mixers"``)."""
    if not layers:
        return
    inputs = _inputs(model)
    source, sink = getattr(model, f"{mixers}_input"), getattr(model, f"{mixers}_output")
    with torch.no_grad(), model.trace(inputs):
        clean = model.logits.save()
    with torch.no_grad(), model.trace(inputs):
        for index in layers:
            source[index] = source[index].clone()
            sink[index] = sink[index].clone()
        written = model.logits.save()
    expect(
        torch.equal(written, clean),
        f"writing every {mixers}_input/{mixers}_output back unchanged changed the logits: {where_differs(written, clean)}.",
    )
    probe = current_probe(model)
    rows, copies = probe.batch_size, len(layers) + 1
    batch = {name: value.repeat(copies, 1) for name, value in inputs.items()}
    direction = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), model.trace(batch):
        for copy, index in enumerate(layers, start=1):
            value = sink[index]
            edited = value.clone()
            part = slice(copy * rows, (copy + 1) * rows)
            scale = float(value[part, -1].detach().abs().max()) + 1.0
            edited[part, -1] += scale * direction.to(value.device, value.dtype)
            sink[index] = edited
        logits = model.logits.save()
    base = logits[:rows]
    tolerance = _tolerance(EFFECT_ULPS, base)
    real = probe.attention_mask.bool().to(base.device)[:, :-1]
    problems = []
    for copy, index in enumerate(layers, start=1):
        edited = logits[copy * rows : (copy + 1) * rows]
        kind = declared_kinds(model)[index]
        if not bool(((edited[:, -1] - base[:, -1]).abs().amax(-1) > tolerance).all()):
            problems.append(f"{mixers}_output[{index}] ({kind}): the edit left some row's last logits unchanged")
        earlier = (edited[:, :-1] - base[:, :-1]).abs()[real]
        if earlier.numel() and float(earlier.max()) > tolerance:
            problems.append(f"{mixers}_output[{index}] ({kind}): editing the last position changed earlier logits "
                            f"(max |Δ| {float(earlier.max()):.3g})")
    expect(not problems, "editing a mixer's output at the last position should change the last logits only: "
           + "; ".join(problems) + ". The mixer path names a module whose output the layer does not use.")


@check("kinds_residual")
def kinds_residual(model: "StandardizedTransformer") -> None:
    """layers_output[i] = layers_input[i] + mixers_output[i] (+ mlps_output[i]), and layers chain exactly."""
    _declared(model)
    kinds = declared_kinds(model)
    forms = [model.adapter.layer_kinds.residuals.get(kind, model.adapter.residual) for kind in kinds]
    summed = [i for i, form in enumerate(forms) if form.kind in ("sequential", "parallel", "sandwich")]
    if not summed:
        raise CheckSkipped(f"the adapter declares Residual(kind={forms[0].kind!r}): the sum is not the outputs as they are")
    saved: list[dict[str, torch.Tensor]] = []
    with torch.no_grad(), model.trace(_inputs(model)):
        for index in range(model.num_layers):
            residual = forms[index]
            post_norms = {"mixers_output": residual.attention_post_norm, "mlps_output": residual.mlp_post_norm}
            values = {"input": model.layers_input[index].save()}
            for name in served_accessors(model, index, ("mixers_output", "mlps_output")):
                values[name] = getattr(model, name)[index].save()
                if residual.kind == "sandwich":  # what is added is the sublayer's output after its post norm
                    norm = module_at(model.layers[index], post_norms[name])
                    values[f"{name} normed"] = (norm.input.save(), norm.output.save())
            values["output"] = model.layers_output[index].save()
            saved.append(values)
    parallel = _parallel_outputs(model, _parallel_layers(model))
    problems = []
    for index, values in enumerate(saved):
        residual = forms[index]
        post_norms = {"mixers_output": residual.attention_post_norm, "mlps_output": residual.mlp_post_norm}
        if index + 1 < len(saved) and not torch.equal(saved[index + 1]["input"], values["output"]):
            problems.append(f"layers_input[{index + 1}] is not layers_output[{index}]")
        if index not in summed:
            continue
        for name in ("mixers_output", "mlps_output"):
            if f"{name} normed" in values:
                norm_input, norm_output = values.pop(f"{name} normed")
                if norm_input.shape != values[name].shape or not torch.equal(norm_input, values[name]):
                    problems.append(f"layer {index}: the post norm `{post_norms[name]}` does not read {name}[{index}]")
                values[name] = norm_output
        try:
            expected = _kind_sum(model, index, residual, values, parallel.get(index))
        except LookupError as error:
            problems.append(f"layer {index}: {error}")
            continue
        tolerance = _tolerance(SUM_ULPS, expected, values["output"])
        if float((expected - values["output"]).abs().max()) > tolerance:
            names = ("mixers_output", "parallel_mixers_output", "mlps_output")
            parts = " + ".join(["layers_input"] + [n for n in names if n in values or (n.startswith("parallel") and index in parallel)])
            problems.append(f"layer {index} ({kinds[index]}, Residual(kind={residual.kind!r})): layers_output != "
                            f"{parts} ({where_differs(expected, values['output'])})")
    expect(not problems, "each layer should add exactly its mixer's and MLP's outputs to the residual stream: "
           + "; ".join(problems) + ". The kind's mixer or MLP path names a module inside or outside the sublayer.")


def _kind_sum(
    model: "StandardizedTransformer", index: int, residual: Any, values: dict, parallel: Any
) -> torch.Tensor:
    """What the declared `Residual` (and the kind's `ParallelMixer`) says layer ``index`` outputs."""
    zero = torch.zeros_like(values["input"])
    mixer, mlp = values.get("mixers_output", zero), values.get("mlps_output", zero)
    if parallel is None:
        return _declared_sum(model, index, residual, {"input": values["input"], "attention": mixer, "mlp": mlp})
    # h + a * mixer + p * parallel, in the family's order: the sublayer scales are folded into the mixers' sum.
    declared = model.adapter.layer_kinds.parallel_mixers[declared_kinds(model)[index]]
    if residual.scale_key is not None:
        attention_scale = mlp_scale = float(model._config_value(residual.scale_key))
    else:
        attention_scale = _scale(model, index, residual.attention_scale, "attention_scale")
        mlp_scale = _scale(model, index, residual.mlp_scale, "mlp_scale")
    parallel_scale = _scale(model, index, declared.scale, "ParallelMixer.scale")
    scaled = lambda value, factor: value if factor is None else value * factor  # noqa: E731
    mixed = scaled(parallel, parallel_scale) + scaled(mixer, attention_scale)
    unscaled = dataclasses.replace(residual, scale_key=None, attention_scale=None, mlp_scale=mlp_scale)
    return _declared_sum(model, index, unscaled, {"input": values["input"], "attention": mixed, "mlp": mlp})


@check("kinds_locality")
def kinds_locality(model: "StandardizedTransformer") -> None:
    """Mixers read a per-token function of the layer input and mix tokens causally; MLPs act per token."""
    _declared(model)
    probe = current_probe(model)
    row = max(range(probe.batch_size), key=lambda r: int(probe.attention_mask[r].sum()))
    ids = probe.row(row).to(model_device(model))
    length = int(ids.shape[1])
    if length < 3:
        raise CheckSkipped("the probe's longest prompt is shorter than 3 tokens")
    edits = [(i, "layer") for i in _mixing_layers(model)] + [(i, "mixer") for i in _mixing_layers(model)]
    edits += [(i, "mlp") for i in range(model.num_layers) if served_accessors(model, i, ("mlps_input",))]
    copy_of = {edit: number for number, edit in enumerate(edits, start=1)}
    batch = {"input_ids": ids.repeat(len(edits) + 1, 1), "attention_mask": torch.ones_like(ids).repeat(len(edits) + 1, 1)}
    direction = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(4))
    middle = length // 2
    read: dict[tuple[int, str], torch.Tensor] = {}

    def push(value: torch.Tensor, copy: int) -> torch.Tensor:
        edited = value.clone()
        scale = float(value[copy, middle].detach().abs().max()) + 1.0
        edited[copy, middle] += scale * direction.to(value.device, value.dtype)
        return edited

    with torch.no_grad(), model.trace(batch):
        for index in range(model.num_layers):
            mixes = (index, "mixer") in copy_of
            if mixes:
                model.layers_input[index] = push(model.layers_input[index], copy_of[(index, "layer")])
                read[(index, "mixer_input")] = model.mixers_input[index].clone().save()
                model.mixers_input[index] = push(model.mixers_input[index], copy_of[(index, "mixer")])
                read[(index, "mixer_output")] = model.mixers_output[index].save()
            if (index, "mlp") in copy_of:
                model.mlps_input[index] = push(model.mlps_input[index], copy_of[(index, "mlp")])
                read[(index, "mlp_output")] = model.mlps_output[index].save()
    branches = model.adapter.layer_kinds.mixer_input_branches
    kinds = declared_kinds(model)
    branched = {i for i in range(model.num_layers)
                if kinds[i] in branches and _layer_attribute(model, i, branches[kinds[i]]) is not None}
    problems = []
    for (index, name), value in read.items():
        edit = {"mixer_input": "layer", "mixer_output": "mixer", "mlp_output": "mlp"}[name]
        change = (value[copy_of[(index, edit)]] - value[0]).abs().amax(-1)
        tolerance = _tolerance(SUM_ULPS, value)
        before, at, after = change[:middle], float(change[middle]), change[middle + 1 :]
        kind = declared_kinds(model)[index]
        if before.numel() and float(before.max()) > tolerance:
            problems.append(f"layer {index} ({kind}): an edit at token {middle} changed {name} at earlier tokens")
        if name == "mixer_input" and index in branched:  # a declared branch mixes tokens into it: causal only
            continue
        if name in ("mixer_input", "mlp_output") and (at <= tolerance or float(after.max()) > tolerance):
            problems.append(f"layer {index} ({kind}): {name} is not a per-token function of its input "
                            f"(change per token {[round(float(v), 5) for v in change]})")
        if name == "mixer_output" and float(after.max()) <= tolerance:
            problems.append(f"layer {index} ({kind}): the mixer's output at later tokens ignores token {middle}")
    expect(not problems, "a mixer should read its own token's normed input and mix tokens causally; an MLP acts per "
           "token: " + "; ".join(problems) + ". The kind's mixer or MLP path names the wrong module.")


@check("kinds_generation")
def kinds_generation(model: "StandardizedTransformer") -> None:
    """An edit of each kind's mixer output at every generation step equals the same edit hooked into HF generate."""
    _declared(model)
    kinds = declared_kinds(model)
    chosen: dict[str, int] = {}
    for index in _mixing_layers(model):
        chosen.setdefault(kinds[index], index)
    parallel = {}  # a parallel mixer's kind, by the key it is chosen under
    for index in _parallel_layers(model):
        declared = model.adapter.layer_kinds.parallel_mixers[kinds[index]]
        parallel.setdefault(f"parallel {declared.kind}", (index, declared.path))
        chosen.setdefault(f"parallel {declared.kind}", index)
    if not chosen:
        raise CheckSkipped("no layer has a token mixer")
    probe = current_probe(model)
    inputs = probe.inputs(model_device(model))
    options = {"max_new_tokens": GENERATED_TOKENS, "min_new_tokens": GENERATED_TOKENS, "do_sample": False}
    if model.tokenizer.pad_token_id is not None:
        options["pad_token_id"] = model.tokenizer.pad_token_id
    with torch.no_grad():
        clean = model._module.generate(**inputs, **options)[:, probe.sequence_length :]
    problems = []
    for kind, layer in chosen.items():
        outputs = model.parallel_mixers_output if kind in parallel else model.mixers_output
        with torch.no_grad(), model.trace(inputs):
            scale = (outputs[layer].detach().abs().max() + 1.0).save()
        push = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(5)) * float(scale) * 4.0
        steps: list[int] = []
        with torch.no_grad(), model.generate(inputs, **options) as tracer:
            for _ in tracer.iter[:GENERATED_TOKENS]:
                value = outputs[layer]
                steps.append(int(value.shape[1]))
                outputs[layer] = value + push.to(value.device, value.dtype)
            traced = tracer.result.save()
        if kind in parallel:
            module = module_at(model.layers[layer], parallel[kind][1])._module
        else:
            module = mixer_module(model, layer)._module

        def hook(_module: Any, _args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (output[0] + push.to(output[0].device, output[0].dtype), *output[1:])
            return output + push.to(output.device, output.dtype)

        handle = module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                reference = model._module.generate(**inputs, **options)
        finally:
            handle.remove()
        traced = traced[:, probe.sequence_length :].cpu()
        reference = reference[:, probe.sequence_length :].cpu()
        if len(steps) != GENERATED_TOKENS:
            problems.append(f"{kind} layer {layer}: tracer.iter reached its output at {len(steps)} steps")
        elif not torch.equal(traced, reference):
            problems.append(f"{kind} layer {layer}: traced edit generated {traced.tolist()}, hooked HF generate "
                            f"{reference.tolist()}")
        elif torch.equal(reference, clean.cpu()):
            problems.append(f"{kind} layer {layer}: a push of 4x the output's scale changed no generated token")
    expect(not problems, f"editing mixers_output at every step of a {GENERATED_TOKENS}-token generation should equal "
           f"the same edit hooked into the plain model's generate: " + "; ".join(problems) + ".")
