"""Fast checks at load: the standard modules resolve and one tiny forward has the right shapes.

They catch a rename map that does not fit the checkpoint (a fine-tune with an
extra wrapper, a family variant) at load time, with the module and adapter named,
instead of as a confusing error deep inside a user's trace.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional

import torch

from .adapter import LAYER_MODULES, ROOT_MODULES
from .errors import RenamingError
from .attention import attention_module
from .source_points import verify_first_level
from . import validation_cache

if TYPE_CHECKING:
    from .model import StandardizedTransformer

#: A few tokens: (batch, seq) told from (seq, batch); the forward costs about what one token's does.
DUMMY_SEQUENCE_LENGTH = 3
#: Validations kept per process: (adapter, config, module tree) -> what the dummy forward recorded.
CACHE_SIZE = 64
_VALIDATED: "OrderedDict[tuple, tuple[Any, dict]]" = OrderedDict()


def _adapter_label(model: "StandardizedTransformer") -> str:
    adapter = model.adapter
    return f"adapter {adapter.name!r} from {adapter.plugin or '<explicit>'}"


def _native_children(envoy) -> str:
    return ", ".join(name for name, _ in envoy._module.named_children()) or "(none)"


def check_root_modules(model: "StandardizedTransformer") -> None:
    """Every standard root module the adapter does not declare absent resolves (else `RenamingError`)."""
    adapter = model.adapter
    missing = [name for name in ROOT_MODULES if name not in adapter.absent and not _has(model, name)]
    if missing:
        raise RenamingError(
            f"{_adapter_label(model)} leaves standard module(s) {', '.join(missing)} unresolved on "
            f"{type(model._module).__name__}; its rename map is {dict(adapter.rename)}; the model's "
            f"top-level children are: {_native_children(model)}. Fix the adapter's rename map "
            f"or pass adapter='<name>' for a family whose module tree matches."
        )


def check_structure(model: "StandardizedTransformer") -> None:
    """Every standard module resolves and the layer count matches the config."""
    adapter = model.adapter
    check_root_modules(model)
    count = len(model.layers)
    expected = model._config_value(model.adapter.config_keys.num_layers)  # the text config's, for a composite
    if expected is not None and count != expected:
        raise RenamingError(
            f"{_adapter_label(model)}: `layers` holds {count} modules but config."
            f"{model.adapter.config_keys.num_layers} says {expected}. The rename map points `layers` "
            f"at the wrong container."
        )
    for index in range(count):
        layer = model.layers[index]
        for name in LAYER_MODULES:
            if name in adapter.absent:
                continue
            span = adapter.spans.get(name)
            for path in (span.start, span.end) if span is not None else (name,):
                if not _has_path(layer, path):
                    raise RenamingError(
                        f"{_adapter_label(model)}: layer {index} ({type(layer._module).__name__}) has no "
                        f"`{path}`" + (f" (the span declared for `{name}`)" if span is not None else "")
                        + f"; its children are: {_native_children(layer)}. Add the family's name for "
                        f"it to the adapter's rename map, or declare `{name}` a span or absent."
                    )


def _has(envoy, name: str) -> bool:
    try:
        getattr(envoy, name)
    except AttributeError:
        return False
    return True


def _has_path(envoy, path: str) -> bool:
    for part in path.split("."):
        if not _has(envoy, part):
            return False
        envoy = getattr(envoy, part)
    return True


def check_points(model: "StandardizedTransformer") -> None:
    """Every declared point's first-level part exists in layer 0's attention forward (else SourceLabelError)."""
    adapter = model.adapter
    if model.num_layers == 0:
        return
    served = lambda spec: spec is not None and not (spec.refuse and spec.refuse(model.config))  # noqa: E731
    declared = []
    if served(adapter.attention):
        declared.append(("attention.probabilities", adapter.attention.probabilities))
    heads = adapter.heads
    if served(heads):
        if heads.attention_call is not None:
            declared.append(("heads.attention_call", heads.attention_call))
        if heads.fused_projection is None:
            declared += [(f"heads.{name}", getattr(heads, name)) for name in ("queries", "keys", "values")]
    for field, point in declared:
        spec = adapter.attention if field.startswith("attention.") else heads
        if spec.module is None and "self_attn" in adapter.spans:
            continue  # a span attention names the module its points are in, or declares none
        verify_first_level(attention_module(model, 0, spec), point, adapter, field)


def check_shapes(model: "StandardizedTransformer") -> None:
    """One forward on a few tokens: every accessor is (1, seq, hidden), logits (1, seq, vocab).

    Layers built alike (same classes, tensor shapes and settings) compute alike, so only
    the first layer of each build and the last layer run; the others are skipped with the
    last run layer's output, which keeps the stream's shape, and are given the container
    their build's first layer returned. The forward then reads a few layers' weights, not
    all of them. A model whose short forward fails (a layer reading state that a skipped
    layer would have left) is checked again with every layer run.
    """
    builds = layer_builds(model)
    if len(set(builds)) + 1 < len(builds):
        try:
            _forward_shapes(model, builds, projection_on_meta(model))
            return
        except RenamingError:
            raise
        except Exception:  # noqa: BLE001 - the short forward is an optimisation: the full one decides
            pass
    _forward_shapes(model, list(range(len(builds))))


def projection_on_meta(model: "StandardizedTransformer") -> Optional[torch.Tensor]:
    """``lm_head``'s output for the dummy's hidden states, computed on the meta device (shape and dtype only).

    The projection reads the whole (vocab, hidden) matrix, often the largest weight of the
    model, to give a shape its parameters already determine; None when the module cannot
    run on meta tensors (the short forward then runs it for real).
    """
    if "lm_head" in model.adapter.absent:
        return None
    try:
        head = model.lm_head._module
        tensors = {name: torch.empty_like(tensor, device="meta")
                   for name, tensor in (*head.named_parameters(), *head.named_buffers())}
        dtype = next(iter(tensors.values())).dtype if tensors else torch.get_default_dtype()
        hidden = torch.empty(1, DUMMY_SEQUENCE_LENGTH, model.hidden_size, dtype=dtype, device="meta")
        with torch.no_grad():
            output = torch.func.functional_call(head, tensors, (hidden,))
    except Exception:  # noqa: BLE001 - any module that needs real data runs for real
        return None
    return output if isinstance(output, torch.Tensor) and output.device.type == "meta" else None


def layer_builds(model: "StandardizedTransformer") -> list[int]:
    """For each layer, the first layer built like it (itself when it is the first of its build).

    A model that shares keys and values across layers is given every layer as its own
    build: a layer reads what its source layer left in the cache during the same forward.
    """
    count = model.num_layers
    if count < 3 or model.adapter.config_keys.kv_shared is not None:  # under 3 layers none would be skipped
        return list(range(count))
    signatures = [layer_signature(model.layers[index]._module) for index in range(count)]
    settings = [signature[1] for signature in signatures]
    positional = {key for key in settings[0] if all(found.get(key) == index for index, found in enumerate(settings))}
    first_of: dict[tuple, int] = {}
    builds = []
    for index, (structure, found) in enumerate(signatures):
        kept = tuple(sorted((key, value) for key, value in found.items() if key not in positional))
        builds.append(first_of.setdefault((structure, kept), index))
    return builds


#: Attribute types that are settings (compared between layers); anything else is state or structure.
PLAIN_SETTINGS = (bool, int, float, str, type(None))


def layer_signature(layer: torch.nn.Module) -> tuple[tuple, dict]:
    """What a layer's forward depends on besides its input: classes and tensor shapes, and plain settings.

    The settings come apart (``{(module, attribute): value}``) so that one holding the
    layer's own index (``layer_idx``) can be told from a setting by comparing layers.
    """
    structure, settings = [], {}
    for name, module in layer.named_modules():
        tensors = tuple(
            (key, tuple(tensor.shape), tensor.dtype)
            for store in (module._parameters, module._buffers) for key, tensor in store.items() if tensor is not None
        )
        structure.append((name, type(module).__qualname__, tensors))
        for key, value in module.__dict__.items():
            if type(value) in PLAIN_SETTINGS:
                settings[(name, key)] = value
    return tuple(structure), settings


def _forward_shapes(model: "StandardizedTransformer", builds: list[int], projection: Optional[torch.Tensor] = None) -> None:
    """The dummy forward: each build's first layer and the last layer run and are read; the others pass the last output on.

    ``projection`` (the meta-device output of `projection_on_meta`): ``lm_head`` does not run,
    zeros of that shape and dtype stand in for its output.
    """
    seen: dict[str, tuple] = {}
    input_ids = torch.arange(DUMMY_SEQUENCE_LENGTH).unsqueeze(0) % max(model.vocab_size, 1)
    has_mlp = "mlp" not in model.adapter.absent
    last = len(builds) - 1
    skipped = {index for index, first in enumerate(builds) if first != index and index != last}
    last_output = None
    with torch.no_grad(), model.trace(input_ids):
        for index in range(len(builds)):
            if index in skipped:
                model.layers[index].skip(last_output)
                continue
            seen[f"attentions_output[{index}]"] = tuple(model.attentions_output[index].shape)
            if has_mlp:
                seen[f"mlps_output[{index}]"] = tuple(model.mlps_output[index].shape)
            last_output = model.layers[index].output
            hidden = model.layers_output[index]
            seen[f"layers_output[{index}]"] = tuple(hidden.shape)
        if projection is not None:
            model.lm_head.skip(torch.zeros(projection.shape, dtype=projection.dtype, device=hidden.device))
        seen["logits"] = tuple(model.logits.shape)
    recorded = model.__dict__.get("_layer_outputs")
    if recorded is not None:
        for index in skipped:
            if builds[index] in recorded:
                recorded[index] = recorded[builds[index]]
            else:
                recorded.pop(index, None)
    for name, shape in seen.items():
        expected = (1, DUMMY_SEQUENCE_LENGTH, model.vocab_size if name == "logits" else model.hidden_size)
        if shape != expected:
            raise RenamingError(
                f"{_adapter_label(model)}: `{name}` has shape {shape} on a (1, {DUMMY_SEQUENCE_LENGTH}) "
                f"input, expected {expected}. The rename map points that standard name at a module "
                f"that does not produce the hidden state (or the config keys "
                f"{model.adapter.config_keys} read the wrong sizes)."
            )


def validate(model: "StandardizedTransformer", persistent: bool = False) -> None:
    """Structure, points and one dummy forward; skipped for a model validated already.

    What the checks see depends only on the adapter, the config and the module tree,
    so a second load of the same checkpoint (a notebook re-run, a sweep over seeds)
    reuses the first one's verdict and the layer output containers its forward recorded.
    ``persistent`` (a checkpoint loaded from a path): the pass is also kept on disk, so a
    later process loading it skips the forward too (see `nnrosetta.validation_cache`).
    """
    key = _validation_key(model)
    known = _VALIDATED.get(key)
    recorded = model.__dict__.get("_layer_outputs", {})
    if known is not None and _same_declaration(known[0], model.adapter):
        recorded.update(known[1])
        _VALIDATED.move_to_end(key)
        return
    stamp = validation_cache.digest(model, key) if persistent and validation_cache.enabled() else None
    kept = validation_cache.load(stamp) if stamp else None
    if kept is not None:
        recorded.update(kept)
    else:
        run_checks(model)
        if stamp:
            validation_cache.store(stamp, recorded)
    _VALIDATED[key] = (model.adapter, dict(recorded))
    while len(_VALIDATED) > CACHE_SIZE:
        _VALIDATED.popitem(last=False)


def run_checks(model: "StandardizedTransformer") -> None:
    """Every load-time check, with no cache: structure, declared points, one dummy forward."""
    if model.adapter.layer_kinds is not None:  # hybrid layers: each checked as its declared kind
        from .layer_kinds import validate_layer_kinds

        validate_layer_kinds(model)
    else:
        check_structure(model)
        check_points(model)
        check_shapes(model)


def _validation_key(model: "StandardizedTransformer") -> tuple:
    """What the load-time checks depend on: the adapter, the config, the attention kernel, the module tree."""
    config = model.config
    tree = tuple((name, type(module).__qualname__) for name, module in model._module.named_modules())
    return (
        model.adapter.name,
        model.adapter.plugin,
        type(model._module).__qualname__,
        config.to_json_string(use_diff=False),
        getattr(config, "_attn_implementation", None),
        hash(tree),
    )


def _same_declaration(known: Any, adapter: Any) -> bool:
    """Each load resolves its own Adapter object; equal fields (same callables) are the same declaration."""
    try:
        return bool(known is adapter or known == adapter)
    except Exception:  # noqa: BLE001 - a field that cannot be compared: validate again
        return False


def clear_validation_cache(disk: bool = False) -> None:
    """Forget every validation of this process (the next load of any model validates again).

    ``disk``: also remove the passes kept on disk for later processes.
    """
    _VALIDATED.clear()
    if disk:
        validation_cache.clear()
