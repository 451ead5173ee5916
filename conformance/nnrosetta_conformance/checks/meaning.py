"""Checks that tie each standard name to its meaning, so a wrong declaration fails by name.

Shapes and fidelity alone let a rename point a standard name at the wrong module
of the right shape: ``self_attn`` at the output projection, ``mlp`` at a norm,
``ln_final`` at the last layer's own norm, a kv-heads key at the query-heads key.
These checks read what the live model computes:

- ``residual_sum``: what each sublayer adds to the residual stream is its output
  (as the adapter's `Residual` declares the layer's form);
- ``sublayer_locality``: the attention consumes a per-token function of the layer
  input and mixes tokens, the MLP does not mix tokens;
- ``final_norm``: ``ln_final`` reads the last layer's output and feeds ``lm_head``;
- ``sizes``: the size properties agree with the projections' real widths;
- ``steering`` and ``skip_layers``: the two built-in edits do exactly what they say.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Optional

import torch

from nnrosetta.accessors import module_at, sublayer_site
from nnrosetta.layer_kinds import softmax_layers
from nnrosetta.specs import LayerTensor

from .base import CheckSkipped, check, current_probe, expect, model_device, where_differs
from .core import clean_logits, plain_reads

if TYPE_CHECKING:
    from nnrosetta.model import StandardizedTransformer
    from nnrosetta.specs import Residual

#: Tolerance of sums and locality comparisons, in ulps of the compared values' scale.
SUM_ULPS = 256
#: Tokens of the longest prompt that `sublayer_locality` runs on (one copy per edit: keep it short).
LOCALITY_TOKENS = 3
#: The accessors a sequential residual sum reads, by the role each plays in it.
SUM_TERMS = {"input": "layers_input", "attention": "attentions_output", "mlp": "mlps_output", "output": "layers_output"}


def _tolerance(*tensors: torch.Tensor) -> float:
    scale = max(1.0, *(float(t.detach().abs().max()) for t in tensors if t.numel()))
    return SUM_ULPS * torch.finfo(tensors[0].dtype).eps * scale


def _has_mlp(model: "StandardizedTransformer") -> bool:
    return "mlp" not in model.adapter.absent


def _longest_row(model: "StandardizedTransformer", tokens: int) -> torch.Tensor:
    """The last ``tokens`` tokens of the probe's longest prompt alone, (1, length), on the model's device."""
    probe = current_probe(model)
    row = max(range(probe.batch_size), key=lambda r: int(probe.attention_mask[r].sum()))
    return probe.row(row)[:, -tokens:].to(model_device(model))


# -- residual stream -----------------------------------------------------------------


@check("residual_sum")
def residual_sum(model: "StandardizedTransformer") -> None:
    """Each layer's output is its input plus what its attention and MLP add, as the adapter's `Residual` says."""
    if model.adapter.layer_kinds is not None:
        raise CheckSkipped("the adapter declares layer kinds: `kinds_residual` checks each layer through its mixer")
    residual = model.adapter.residual
    if residual.kind == "post_norm":
        raise CheckSkipped("the adapter declares post-norm layers (Residual(kind='post_norm')): nothing is added as is")
    if not _has_mlp(model):
        raise CheckSkipped(f"the adapter declares no MLP ({model.adapter.absent['mlp']})")
    reads = plain_reads(model) if residual.kind != "sandwich" and not residual.module_terms else None
    if reads is not None:  # the suite's shared plain trace holds every value a sequential sum needs
        saved = [{key: reads[f"{name}[{index}]"] for key, name in SUM_TERMS.items()} for index in range(model.num_layers)]
    else:
        saved = _traced_sum_terms(model, residual)
    problems = []
    for index, values in enumerate(saved):
        if residual.kind == "sandwich":
            for name, norm in (("attention", residual.attention_post_norm), ("mlp", residual.mlp_post_norm)):
                seen = values[f"{name}_norm_input"]
                if seen.shape != values[name].shape or not torch.equal(seen, values[name]):
                    problems.append(f"layer {index}: `{norm}` does not read {name}s_output[{index}]")
            values = {**values, "attention": values["attention_added"], "mlp": values["mlp_added"]}
        try:
            expected = _declared_sum(model, index, residual, values)
        except LookupError as error:
            problems.append(f"layer {index}: {error}")
            continue
        difference = float((expected - values["output"]).abs().max())
        tolerance = _tolerance(expected, values["output"])
        if difference > tolerance:
            problems.append(
                f"layer {index}: layers_output differs from the declared sum of layers_input, attentions_output "
                f"and mlps_output ({where_differs(expected, values['output'])}, tolerance {tolerance:.3g})"
            )
    expect(
        not problems,
        f"with the declared {_form(residual)}, each layer should add exactly its sublayers' outputs (and the "
        "declared scales and terms) to the residual stream: " + "; ".join(problems) + ". Either `self_attn`/`mlp` "
        "name modules whose outputs are not what the layer adds (a norm, a projection inside the sublayer), or "
        "the declared residual form is wrong: the layer may scale its skip path (`attention_skip`/`mlp_skip`), add "
        "a sibling module or a bias (`attention_terms`/`mlp_terms`/`layer_terms`) or scale its sum "
        "(`output_scale`) - see `Residual`.",
    )


def _form(residual: "Residual") -> str:
    """The declaration as written: its kind and every field set away from its default."""
    def shown(value: object) -> str:
        return getattr(value, "__qualname__", None) or repr(value) if callable(value) else repr(value)

    changed = [
        f"{item.name}={shown(getattr(residual, item.name))}"
        for item in dataclasses.fields(residual)
        if item.name != "kind" and getattr(residual, item.name) != item.default
    ]
    return f"Residual({', '.join([f'kind={residual.kind!r}'] + changed)})"


def _layer_attribute(model: "StandardizedTransformer", index: int, path: str) -> object:
    """The layer's attribute at a dotted path (a module, a parameter, a buffer); None where the layer lacks it."""
    value: object = model.layers[index]._module
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _scale(model: "StandardizedTransformer", index: int, scale: object, name: str) -> object:
    """A declared `Scale` on layer ``index``: None (1), a float, or the layer's tensor."""
    if scale is None or isinstance(scale, (int, float)):
        return scale
    if isinstance(scale, LayerTensor):
        value = _layer_attribute(model, index, scale.path)
        if value is not None and not isinstance(value, torch.Tensor):
            raise LookupError(f"`{name}` names {scale.path!r}, which is a {type(value).__name__}, not a tensor")
        return None if value is None else value.detach()
    value = scale(model.config, index) if callable(scale) else model._config_value(scale)
    if value is None:
        raise LookupError(f"`{name}` reads config key {scale!r}, which the config does not have")
    return float(value)


def _times(value: torch.Tensor, scale: object) -> torch.Tensor:
    return value if scale is None else value * scale


def _plus_terms(
    model: "StandardizedTransformer", index: int, value: torch.Tensor, terms: tuple, read: dict
) -> torch.Tensor:
    """``value`` plus each declared term present on the layer, in the declared order."""
    for term in terms:
        if isinstance(term, LayerTensor):
            added = _layer_attribute(model, index, term.path)
            if added is not None and not isinstance(added, torch.Tensor):
                raise LookupError(f"the term {term.path!r} is a {type(added).__name__}, not a tensor")
            added = None if added is None else added.detach()
        else:
            added = read.get(term)
            if added is None and _layer_attribute(model, index, term) is not None:
                raise LookupError(f"the layer has the declared term {term!r}, but its output was not read")
        if added is not None:
            value = value + added
    return value


def _declared_sum(model: "StandardizedTransformer", index: int, residual: "Residual", values: dict) -> torch.Tensor:
    """What `Residual` says layer ``index`` outputs, in its order of operations (see `Residual`)."""
    read = values.get("terms", {})
    if residual.scale_key is not None:  # one config factor on both sublayers
        attention_scale = mlp_scale = float(model._config_value(residual.scale_key))
    else:
        attention_scale = _scale(model, index, residual.attention_scale, "attention_scale")
        mlp_scale = _scale(model, index, residual.mlp_scale, "mlp_scale")
    attention = _times(_plus_terms(model, index, values["attention"], residual.attention_terms, read), attention_scale)
    mlp = _times(_plus_terms(model, index, values["mlp"], residual.mlp_terms, read), mlp_scale)
    skip = _plus_terms(model, index, values["input"], residual.attention_skip_terms, read)
    stream = _times(skip, _scale(model, index, residual.attention_skip, "attention_skip")) + attention
    if residual.kind == "parallel":
        stream = stream + mlp
    else:
        skip = _plus_terms(model, index, stream, residual.mlp_skip_terms, read)
        stream = _times(skip, _scale(model, index, residual.mlp_skip, "mlp_skip")) + mlp
    stream = _plus_terms(model, index, stream, residual.layer_terms, read)
    return _times(stream, _scale(model, index, residual.output_scale, "output_scale"))


def _traced_sum_terms(model: "StandardizedTransformer", residual: Residual) -> list[dict[str, torch.Tensor]]:
    """Per layer, from one trace: its input, its sublayers' outputs (the sandwich norms' input and output,
    the declared module terms the layer has), its output."""
    saved: list[dict[str, torch.Tensor]] = []
    present = [
        {term for term in residual.module_terms if _layer_attribute(model, index, term) is not None}
        for index in range(model.num_layers)
    ]
    with torch.no_grad(), model.trace(current_probe(model).inputs(model_device(model))):
        for index in range(model.num_layers):
            layer = model.layers[index]
            terms = {}
            values = {"input": model.layers_input[index].save(), "attention": model.attentions_output[index].save()}
            if residual.kind == "sandwich":
                values["attention_norm_input"] = module_at(layer, residual.attention_post_norm).input.save()
                values["attention_added"] = module_at(layer, residual.attention_post_norm).output.save()
            for term in (t for t in residual.attention_skip_terms + residual.attention_terms if t in present[index]):
                terms[term] = module_at(layer, term).output.save()
            values["mlp"] = model.mlps_output[index].save()
            if residual.kind == "sandwich":
                values["mlp_norm_input"] = module_at(layer, residual.mlp_post_norm).input.save()
                values["mlp_added"] = module_at(layer, residual.mlp_post_norm).output.save()
            for term in (t for t in residual.mlp_skip_terms + residual.mlp_terms + residual.layer_terms
                         if t in present[index]):
                terms[term] = module_at(layer, term).output.save()
            values["output"] = model.layers_output[index].save()
            values["terms"] = terms
            saved.append(values)
    return saved


def _kv_shared(model: "StandardizedTransformer") -> dict[int, int]:
    """The declared cross-layer kv sharing, ``{layer: source layer}``, checked to point backwards at a real layer."""
    declare = model.adapter.config_keys.kv_shared
    if declare is None:
        return {}
    shared = {int(layer): int(source) for layer, source in dict(declare(model.config)).items()}
    wrong = {layer: source for layer, source in shared.items() if not 0 <= source < layer < model.num_layers}
    expect(
        not wrong,
        f"ConfigKeys.kv_shared should map a layer to an earlier layer (0 <= source < layer < {model.num_layers}), "
        f"saw {wrong}. Fix the adapter's kv_shared function.",
    )
    return shared


@check("sublayer_locality")
def sublayer_locality(model: "StandardizedTransformer") -> None:
    """attentions_input is a per-token function of layers_input and the attention mixes tokens; the MLP does not.

    Where `ConfigKeys.kv_shared` declares that a layer attends over an earlier layer's keys and
    values, that layer's own input reaches only its own tokens' outputs, and the source's
    mixes tokens into it: an edit of the source's attention input, with the residual stream
    after the source and every later layer put back, must move the reusing layer's later
    tokens, and no other later attention.
    """
    if model.adapter.layer_kinds is not None:
        raise CheckSkipped("the adapter declares layer kinds: `kinds_locality` checks each layer's mixer and MLP")
    ids = _longest_row(model, LOCALITY_TOKENS)
    length = int(ids.shape[1])
    if length < 2:
        raise CheckSkipped("the probe's longest prompt has one token: nothing can mix")
    shared = _kv_shared(model)
    has_mlp = _has_mlp(model)
    kinds = ("layer", "attention") + (("mlp",) if has_mlp else ())
    edits = [(index, kind) for index in range(model.num_layers) for kind in kinds]
    copies = len(edits) + 1
    batch = {"input_ids": ids.repeat(copies, 1), "attention_mask": torch.ones_like(ids).repeat(copies, 1)}
    generator = torch.Generator().manual_seed(1)
    direction = torch.randn(model.hidden_size, generator=generator)
    copy_of = {edit: number for number, edit in enumerate(edits, start=1)}
    read: dict[tuple[int, str], torch.Tensor] = {}

    def push(value: torch.Tensor, copy: int, token: int = 0) -> torch.Tensor:
        edited = value.clone()
        size = float(value[copy, token].detach().abs().max()) + 1.0
        edited[copy, token] += size * direction.to(value.device, value.dtype)
        return edited

    with torch.no_grad(), model.trace(batch):
        for index in range(model.num_layers):
            model.layers_input[index] = push(model.layers_input[index], copy_of[(index, "layer")])
            read[(index, "attention_input")] = model.attentions_input[index].clone().save()
            # A layer reusing another's keys and values is edited at the last token: its query is all it
            # projects, and the first token's output (one key to attend to) does not depend on it.
            token = length - 1 if index in shared else 0
            model.attentions_input[index] = push(model.attentions_input[index], copy_of[(index, "attention")], token)
            read[(index, "attention_output")] = model.attentions_output[index].save()
            if has_mlp:
                model.mlps_input[index] = push(model.mlps_input[index], copy_of[(index, "mlp")])
                read[(index, "mlp_output")] = model.mlps_output[index].save()
            if shared and index < model.num_layers - 1:
                # In the copies of this and every earlier layer's attention edit, put the stream after this
                # layer back: only shared keys and values carry an edit on to a later attention.
                output = model.layers_output[index]
                restored = output.clone()
                restored[[copy_of[(source, "attention")] for source in range(index + 1)]] = output[0]
                model.layers_output[index] = restored
    problems = []
    for index in range(model.num_layers):

        def change(name: str, kind: str, layer: int = index) -> torch.Tensor:
            value = read[(index, name)]
            return (value[copy_of[(layer, kind)]] - value[0]).abs().amax(-1), _tolerance(value)

        moved, tolerance = change("attention_input", "layer")
        if float(moved[0]) <= tolerance or float(moved[1:].max()) > tolerance:
            problems.append(
                f"layer {index}: editing layers_input at token 0 should change attentions_input at token 0 only; "
                f"change per token {[round(float(v), 5) for v in moved]}"
            )
        moved, tolerance = change("attention_output", "attention")
        if index in shared:
            if float(moved[-1]) <= tolerance or float(moved[:-1].max()) > tolerance:
                problems.append(
                    f"layer {index}: kv_shared says it attends over layer {shared[index]}'s keys and values, so "
                    f"editing its attentions_input at the last token should change its output there only (its "
                    f"query); change per token {[round(float(v), 5) for v in moved]}"
                )
        elif float(moved[1:].max()) <= tolerance:
            problems.append(
                f"layer {index}: editing attentions_input at token 0 left attentions_output at every later token "
                f"unchanged: the module called self_attn does not mix tokens (or the layer reuses an earlier "
                f"layer's keys and values, which ConfigKeys.kv_shared does not declare)"
            )
        for source in range(index) if shared else ():
            moved, tolerance = change("attention_output", "attention", source)
            if shared.get(index) == source and float(moved[1:].max()) <= tolerance:
                problems.append(
                    f"layer {index}: kv_shared says it attends over layer {source}'s keys and values, but editing "
                    f"layer {source}'s attentions_input at token 0 (the stream after each layer put back) left layer "
                    f"{index}'s later tokens unchanged"
                )
            elif shared.get(index) != source and float(moved.max()) > tolerance:
                problems.append(
                    f"layer {index}: editing layer {source}'s attentions_input (the stream after each layer put back) "
                    f"changed layer {index}'s attention output by {float(moved.max()):.3g}: it reads layer "
                    f"{source}'s keys and values, which kv_shared does not declare"
                    + (f" (it declares layer {shared[index]})" if index in shared else "")
                )
        if has_mlp:
            moved, tolerance = change("mlp_output", "mlp")
            if float(moved[0]) <= tolerance or float(moved[1:].max()) > tolerance:
                problems.append(
                    f"layer {index}: editing mlps_input at token 0 should change mlps_output at token 0 only; "
                    f"change per token {[round(float(v), 5) for v in moved]}"
                )
    expect(
        not problems,
        "the attention should consume a per-token function of the layer input and mix tokens, the MLP "
        "should act on each token alone: " + "; ".join(problems) + ". The rename map points `self_attn` or "
        "`mlp` at a module inside the sublayer (an output projection) or outside it, or ConfigKeys.kv_shared "
        "names the wrong layers.",
    )


# -- the way out -----------------------------------------------------------------------


@check("final_norm")
def final_norm(model: "StandardizedTransformer") -> None:
    """ln_final reads the last layer's output, and (without a declared final projection) feeds lm_head."""
    if "ln_final" in model.adapter.absent:
        raise CheckSkipped(f"the adapter declares no final norm: {model.adapter.absent['ln_final']}")
    probe = current_probe(model)
    reads = plain_reads(model)
    if reads is not None:
        last = reads[f"layers_output[{model.num_layers - 1}]"]
        norm_input, norm_output, head_input = reads["ln_final.input"], reads["ln_final.output"], reads["lm_head.input"]
    else:
        with torch.no_grad(), model.trace(probe.inputs(model_device(model))):
            last = model.layers_output[-1].save()
            norm_input = model.ln_final.input.save()
            norm_output = model.ln_final.output.save()
            head_input = model.lm_head.input.save()
    expect(
        norm_input.shape == last.shape and torch.equal(norm_input, last),
        f"ln_final should read layers_output[-1], but its input differs "
        f"({where_differs(norm_input, last) if norm_input.shape == last.shape else f'shapes {tuple(norm_input.shape)} vs {tuple(last.shape)}'}). "
        f"The rename map points `ln_final` at a norm that is not the final one (a layer's own norm?).",
    )
    if model.adapter.final_projection is None:
        expect(
            head_input.shape == norm_output.shape and torch.equal(head_input, norm_output),
            "lm_head should read ln_final's output (the adapter declares no final_projection), but its input "
            "differs. Declare the family's final projection, or point `ln_final` at the norm that feeds lm_head.",
        )


# -- sizes -------------------------------------------------------------------------------


def _widths(module: torch.nn.Module) -> set[int]:
    widths = set()
    for child in module.children():
        weight = getattr(child, "weight", None)
        if isinstance(child, torch.nn.Linear):
            widths.add(int(child.out_features))
        elif isinstance(weight, torch.Tensor) and weight.dim() == 2 and type(child).__name__ == "Conv1D":
            widths.add(int(weight.shape[1]))
    return widths


def _projection_width(module: torch.nn.Module) -> Optional[int]:
    """A projection's output width: a linear layer's, a Conv1D's, or one expert's of an (experts, out, in) stack."""
    if isinstance(module, torch.nn.Linear):
        return int(module.out_features)
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 2 and type(module).__name__ == "Conv1D":
        return int(weight.shape[1])
    if isinstance(weight, torch.Tensor) and weight.dim() == 3:
        return int(weight.shape[1])
    return None


def _factor(model: "StandardizedTransformer", layer: int, factor: object, served: dict[str, int]) -> Optional[int]:
    if isinstance(factor, int):
        return factor
    if factor in served:
        return served[factor]
    value = getattr(model.adapter.config_keys.layer_config(model.config.get_text_config(), layer), factor, None)
    value = value if value is not None else model._config_value(factor)
    return None if value is None else int(value)


def _declared_projections(model: "StandardizedTransformer", layer: int, module: torch.nn.Module,
                          served: dict[str, int]) -> list[str]:
    """What differs between the declared `ConfigKeys.projections` widths and the layer's real ones."""
    problems = []
    for path, parts in model.adapter.config_keys.projections.items():
        child = module
        for part in path.split("."):
            child = getattr(child, part, None)
        width = None if not isinstance(child, torch.nn.Module) else _projection_width(child)
        if width is None:
            problems.append(f"layer {layer}: no projection at self_attn.{path} (a linear layer or an expert stack)")
            continue
        factors = [[_factor(model, layer, f, served) for f in product] for product in parts]
        if any(value is None for product in factors for value in product):
            problems.append(f"layer {layer}: a factor of self_attn.{path}'s declared width {parts} is no size or config key")
            continue
        expected = sum(math.prod(product) for product in factors)
        if expected != width:
            problems.append(
                f"layer {layer}: self_attn.{path} is {width} wide, but its declared parts {parts} with {served} "
                f"make {expected}"
            )
    return problems


def _default_widths(model: "StandardizedTransformer", layer: int, module: torch.nn.Module, served: dict[str, int],
                    kv_module: torch.nn.Module) -> list[str]:
    """The default layouts: a query projection and key/value ones (on ``kv_module``), or one fused projection."""
    widths, kv_widths = _widths(module), _widths(kv_module)
    heads, kv_heads, head_dim = served["num_heads"], served["num_kv_heads"], served["head_dim"]
    separate = heads * head_dim in widths and kv_heads * head_dim in kv_widths
    fused = (heads + 2 * kv_heads) * head_dim in widths
    if separate or fused:
        return []
    source = "" if kv_module is module else " (keys and values: their source layer's)"
    return [
        f"layer {layer}: num_heads={heads}, num_kv_heads={kv_heads}, head_dim={head_dim} predict query width "
        f"{heads * head_dim} and key/value width {kv_heads * head_dim}{source} (or a fused "
        f"{(heads + 2 * kv_heads) * head_dim}), but the attention's projections have widths {sorted(widths)}"
        + ("" if kv_module is module else f" and the source's {sorted(kv_widths)}")
    ]


@check("sizes")
def sizes(model: "StandardizedTransformer") -> None:
    """hidden_size, vocab_size, num_heads, num_kv_heads and head_dim (per layer where declared) agree with the weights."""
    embedding = model.embed_tokens._module.weight
    expect(
        int(embedding.shape[-1]) == model.hidden_size,
        f"hidden_size is {model.hidden_size} but the token embedding is {tuple(embedding.shape)}; "
        f"the adapter's config_keys.hidden_size ({model.adapter.config_keys.hidden_size!r}) reads the wrong key.",
    )
    expect(
        int(embedding.shape[0]) >= model.vocab_size,
        f"vocab_size is {model.vocab_size} but the token embedding has {embedding.shape[0]} rows; "
        f"config_keys.vocab_size ({model.adapter.config_keys.vocab_size!r}) reads the wrong key.",
    )
    if model.adapter.heads is not None:
        return  # the `heads` check compares every per-head shape with these sizes
    if "self_attn" in model.adapter.spans:
        raise CheckSkipped("the attention is a span: no single module's projections to measure")
    attention = softmax_layers(model)
    if not attention:
        raise CheckSkipped("no layer is a softmax-attention layer: no attention projections to measure")
    keys = model.adapter.config_keys

    def module(layer: int) -> torch.nn.Module:
        return sublayer_site(model, layer, "self_attn", "output")._module

    if keys.projections is None and not _widths(module(attention[0])):
        raise CheckSkipped("the attention module has no linear projections of its own to measure")
    shared = _kv_shared(model)
    problems = []
    # One size per model: the first attention layer stands for all; declared per layer: every one is measured.
    for layer in attention if keys.per_layer is not None else attention[:1]:
        if keys.per_layer is not None:
            served = keys.layer_sizes(model.config.get_text_config(), layer)
        else:
            served = {"num_heads": model.num_heads, "num_kv_heads": model.num_kv_heads, "head_dim": model.head_dim}
        if keys.projections is not None:
            problems += _declared_projections(model, layer, module(layer), served)
        else:
            problems += _default_widths(model, layer, module(layer), served, module(shared.get(layer, layer)))
    expect(
        not problems,
        "the declared sizes should be the attention projections' real widths: " + "; ".join(problems)
        + f". Fix the adapter's config_keys ({keys}).",
    )


# -- built-in edits ----------------------------------------------------------------------


@check("steering")
def steering(model: "StandardizedTransformer") -> None:
    """steer(layer, v, factor, token_positions, batch_index) adds exactly factor * v there and nowhere else."""
    if model.num_layers < 2:
        raise CheckSkipped("the model has one layer: no next layer to read the steered stream at")
    probe = current_probe(model)
    layer = 0
    vector = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), model.trace(probe.inputs(model_device(model))):
        before = model.layers_output[layer].clone().save()
        model.steer(layer, vector, factor=2.0, token_positions=[-1], batch_index=[0])
        after = model.layers_input[layer + 1].save()
    expected = before.clone()
    expected[0, -1] += 2.0 * vector.to(before.device, before.dtype)
    expect(
        torch.equal(after, expected),
        f"steer(0, v, factor=2, token_positions=[-1], batch_index=[0]) should add 2 * v at row 0, last token, "
        f"and change nothing else; layers_input[1] is off by {where_differs(after, expected)}.",
    )


@check("skip_layers")
def skip_layers(model: "StandardizedTransformer") -> None:
    """skip_layers(0, 0) makes layer 0's output its input, and the logits change."""
    probe = current_probe(model)
    inputs = probe.inputs(model_device(model))
    clean = clean_logits(model)
    with torch.no_grad(), model.trace(inputs):
        first_input = model.layers_input[0].save()
        model.skip_layers(0, 0)
        if model.num_layers > 1:
            following = model.layers_input[1].save()
        skipped = model.logits.save()
    if model.num_layers > 1:
        expect(
            torch.equal(following, first_input),
            f"after skip_layers(0, 0) the next layer should read layer 0's input, but reads something else "
            f"({where_differs(following, first_input)}).",
        )
    expect(not torch.equal(skipped, clean), "skip_layers(0, 0) left the logits unchanged: the skip did not apply.")
