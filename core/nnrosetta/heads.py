"""Per-head access: queries, keys, values, rotated queries and keys, head outputs, recomputed patterns.

The plugin's `HeadsSpec` says where the family's attention forward holds each
value; the core serves them in one layout whatever the family:

- ``queries[i]`` (batch, heads, seq, head_dim); ``keys[i]`` and ``values[i]``
  (batch, kv_heads, seq, head_dim): the projections split into heads, after any
  per-head norm the family applies, before rotary embedding. Readable and writable.
- ``rotated_queries[i]`` / ``rotated_keys[i]``: the queries and keys exactly as
  the attention function receives them (after rotary where the family applies
  it; keys include cached positions during generation). Read-only.
- ``heads_output[i]`` (batch, seq, heads, head_dim): each head's output before the
  output projection. Readable and writable: zeroing one head ablates it
  (``ablate_heads(layer, heads)`` does that, checking the head indices).
- ``attention_patterns(i)`` (batch, heads, q, k): the probabilities recomputed from
  the rotated queries and keys with the family's own scaling, soft-cap, mask and
  attention sinks (`AttentionSpec.sinks`, whose column is dropped), under any
  attention implementation (sdpa included). Read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch

from .accessors import module_at, normalize_index
from .attention import attention_module, declared_spec, sink_logits
from .errors import AccessorAssignmentError, CapabilityError, LayerIndexError, ShapeError
from .points import Argument, Point
from .source_points import Reached, position, reach
from .specs import HeadsSpec

if TYPE_CHECKING:
    from nnsight.intervention.envoy import Envoy
    from nnsight.intervention.source import SourceEnvoy

    from .model import StandardizedTransformer

#: Positions in transformers' AttentionInterface call: (module, query, key, value, attention_mask, ...).
CALL_QUERY, CALL_KEY, CALL_VALUE, CALL_MASK = 1, 2, 3, 4


def heads_spec(model: "StandardizedTransformer", what: str) -> HeadsSpec:
    """The adapter's heads spec, or an error saying why per-head values cannot be served."""
    return declared_spec(model, "heads", what, "per-head values", "`model.attentions_output[i]`")


def output_projection(model: "StandardizedTransformer", index: int, spec: HeadsSpec) -> "Envoy":
    """The output projection: a path from ``self_attn``, or from the layer when the spec names a ``module``."""
    layer = normalize_index(index, model.num_layers, "layer", "num_layers")
    base = model.layers[layer] if spec.module else model.layers[layer].self_attn
    return module_at(base, spec.output_projection)


def _attention(model: "StandardizedTransformer", index: int) -> "Envoy":
    layer = normalize_index(index, model.num_layers, "layer", "num_layers")
    return attention_module(model, layer, model.adapter.heads)


def _check_written(name: str, index: int, current: torch.Tensor, value: Any, layout: str) -> None:
    if not isinstance(value, torch.Tensor) or value.shape != current.shape:
        seen = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ShapeError(
            f"{name}[{index}] has shape {tuple(current.shape)} {layout} but the value written is {seen}; "
            f"write a tensor of the same shape (edit a clone of the value read)."
        )


class HeadProjections:
    """``model.queries`` / ``keys`` / ``values``: per-head projections before rotary, readable and writable.

    Served from the labelled per-head tensor, or split out of the fused projection's
    output ([queries | keys | values] along the last dimension).
    """

    def __init__(self, model: "StandardizedTransformer", name: str) -> None:
        self._model = model
        self._name = name

    def __len__(self) -> int:
        return self._model.num_layers

    def _spec(self, index: int) -> HeadsSpec:
        return heads_spec(self._model, f"{self._name}[{index}]")

    def _point(self, spec: HeadsSpec, index: int) -> Point:
        """The declared point; values read at the attention call when assigned before the keys."""
        point = getattr(spec, self._name)
        if self._name == "values" and spec.attention_call is not None:
            attention = _attention(self._model, index)
            if position(attention, point) < position(attention, spec.keys):
                point = Argument(spec.attention_call, spec.call_arguments[2])
        return point

    def _reached(self, spec: HeadsSpec, index: int) -> Reached:
        return reach(_attention(self._model, index), self._point(spec, index), self._model.adapter, f"heads.{self._name}")

    def _served(self, spec: HeadsSpec, index: int, value: torch.Tensor) -> torch.Tensor:
        """The family's tensor in the standard (batch, heads, seq, head_dim) layout."""
        if spec.flat_heads:
            batch = self._model._layer_shape(normalize_index(index, len(self), "layer", "num_layers"))[0]
            return value.reshape(batch, -1, *value.shape[-2:])
        return value.transpose(1, 2) if self._name in spec.seq_first else value

    def _labelled(self, spec: HeadsSpec, index: int) -> torch.Tensor:
        return self._served(spec, index, self._reached(spec, index).value)

    def _write_labelled(self, spec: HeadsSpec, index: int, value: torch.Tensor) -> None:
        reached = self._reached(spec, index)
        raw = reached.value
        current = self._served(spec, index, raw)
        _check_written(self._name, index, current, value, "(batch, heads, seq, head_dim)")
        if spec.flat_heads:
            reached.write(value.reshape(raw.shape))
        else:
            reached.write(value.transpose(1, 2) if self._name in spec.seq_first else value)

    def _fused_slice(self) -> slice:
        query_width = self._model.num_heads * self._model.head_dim
        kv_width = self._model.num_kv_heads * self._model.head_dim
        starts = {"queries": 0, "keys": query_width, "values": query_width + kv_width}
        widths = {"queries": query_width, "keys": kv_width, "values": kv_width}
        return slice(starts[self._name], starts[self._name] + widths[self._name])

    def _split(self, fused: torch.Tensor, layout: str) -> torch.Tensor:
        if layout == "per_head":
            part = self._per_head(fused)[..., ("queries", "keys", "values").index(self._name), :]
            return part.transpose(1, 2)
        if layout == "grouped":
            part = self._per_group(fused)[..., self._group_slice(), :]
            return part.reshape(*part.shape[:2], -1, part.shape[-1]).transpose(1, 2)
        part = fused[..., self._fused_slice()]
        return part.reshape(*part.shape[:-1], -1, self._model.head_dim).transpose(1, 2)

    def _per_group(self, fused: torch.Tensor) -> torch.Tensor:
        """(batch, seq, kv_heads, queries per kv head + 2, head_dim): each group's queries, key, value."""
        per_group = self._model.num_heads // self._model.num_kv_heads + 2
        return fused.reshape(*fused.shape[:-1], self._model.num_kv_heads, per_group, self._model.head_dim)

    def _group_slice(self) -> slice:
        queries = self._model.num_heads // self._model.num_kv_heads
        return {"queries": slice(0, queries), "keys": slice(queries, queries + 1),
                "values": slice(queries + 1, queries + 2)}[self._name]

    def _per_head(self, fused: torch.Tensor) -> torch.Tensor:
        """(batch, seq, heads, 3, head_dim): each head's query, key and value side by side."""
        return fused.reshape(*fused.shape[:-1], self._model.num_heads, 3, self._model.head_dim)

    def __getitem__(self, index: int) -> torch.Tensor:
        spec = self._spec(index)
        if spec.fused_projection is None:
            return self._labelled(spec, index)
        attention = _attention(self._model, index)
        # Instrument the attention forward before it runs, so later reads inside it (the rotated
        # queries at the attention call) can still reach it in this forward.
        attention.source
        return self._split(getattr(attention, spec.fused_projection).output, spec.fused_layout)

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        spec = self._spec(index)
        if spec.fused_projection is None:
            self._write_labelled(spec, index, value)
            return
        projection = getattr(_attention(self._model, index), spec.fused_projection)
        fused = projection.output
        _check_written(self._name, index, self._split(fused, spec.fused_layout), value, "(batch, heads, seq, head_dim)")
        edited = fused.clone()
        if spec.fused_layout == "per_head":
            view = self._per_head(edited)
            view[..., ("queries", "keys", "values").index(self._name), :] = value.transpose(1, 2)
            edited = view.reshape(fused.shape)
        elif spec.fused_layout == "grouped":
            view = self._per_group(edited)
            part = view[..., self._group_slice(), :]
            view[..., self._group_slice(), :] = value.transpose(1, 2).reshape(part.shape)
            edited = view.reshape(fused.shape)
        else:
            edited[..., self._fused_slice()] = value.transpose(1, 2).reshape(*fused.shape[:-1], -1)
        projection.output = edited


class AttentionCallInputs:
    """``model.rotated_queries`` / ``rotated_keys``: what the attention function receives. Read-only."""

    def __init__(self, model: "StandardizedTransformer", name: str, position: int) -> None:
        self._model = model
        self._name = name
        self._position = position

    def __len__(self) -> int:
        return self._model.num_layers

    def __getitem__(self, index: int) -> torch.Tensor:
        args, _ = attention_call(self._model, index, f"{self._name}[{index}]").inputs
        return args[heads_spec(self._model, self._name).call_arguments[self._position - CALL_QUERY]]

    def __setitem__(self, index: int, value: Any) -> None:
        raise AccessorAssignmentError(
            f"`{self._name}[{index}]` is read-only: it is what the attention function receives. To edit "
            f"queries or keys, write `model.queries[{index}]` / `model.keys[{index}]` (before rotary)."
        )


def attention_call(model: "StandardizedTransformer", index: int, what: str) -> "SourceEnvoy":
    """The call to the attention function in layer ``index``'s attention forward."""
    spec = heads_spec(model, what)
    if spec.attention_call is None:
        adapter = model.adapter
        raise CapabilityError(
            f"`{what}` needs the call of the attention function, but adapter {adapter.name!r} "
            f"({adapter.plugin or '<explicit>'}) declares none for model type {adapter.model_type!r}: the "
            f"family computes attention by hand in its forward. Read `queries[i]`/`keys[i]`/`values[i]` and "
            f"`heads_output[i]`, or `attention_probabilities[i]` (eager) for the probabilities."
        )
    return reach(_attention(model, index), spec.attention_call, model.adapter, "heads.attention_call").operation


class HeadsOutput:
    """``model.heads_output``: each head's output before the output projection, (batch, seq, heads, head_dim)."""

    def __init__(self, model: "StandardizedTransformer") -> None:
        self._model = model

    def __len__(self) -> int:
        return self._model.num_layers

    def _projection(self, index: int) -> "Envoy":
        spec = heads_spec(self._model, f"heads_output[{index}]")
        return output_projection(self._model, index, spec)

    def _heads_shape(self, flat: torch.Tensor) -> tuple[int, ...]:
        return (*flat.shape[:-1], self._model.num_heads, flat.shape[-1] // self._model.num_heads)

    def __getitem__(self, index: int) -> torch.Tensor:
        flat = self._projection(index).input
        return flat.reshape(self._heads_shape(flat))

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        projection = self._projection(index)
        flat = projection.input
        _check_written("heads_output", index, flat.reshape(self._heads_shape(flat)), value, "(batch, seq, heads, head_dim)")
        projection.input = value.reshape(flat.shape)


def _call_argument(args: tuple, kwargs: dict, position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


def recompute_probabilities(
    query: torch.Tensor,
    key: torch.Tensor,
    mask: Optional[torch.Tensor],
    scaling: Optional[float],
    softcap: Optional[float],
    sinks: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """softmax(softcap(q·kᵀ·scaling) + mask), as eager attention computes it, (batch, heads, q, k).

    A boolean mask (sdpa's) becomes eager's additive one (0 where attended, the
    dtype's minimum elsewhere); no mask means plain causal attention, aligned so
    the last query sees every key. With ``sinks`` (one logit per head, `AttentionSpec.sinks`)
    each row's softmax has one more column holding the head's sink logit, dropped after
    it, as the family's eager attention does: rows then sum to 1 minus the sink's share.
    """
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    minimum = torch.finfo(scores.dtype).min
    if mask is None:
        q_len, k_len = scores.shape[-2:]
        allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
        scores = scores.masked_fill(~allowed, minimum)
    elif mask.dtype == torch.bool:
        scores = scores + torch.where(mask[..., : scores.shape[-1]], 0.0, minimum).to(scores.dtype)
    else:
        scores = scores + mask[..., : scores.shape[-1]]
    if sinks is not None:
        column = sinks.reshape(1, -1, 1, 1).to(scores.dtype).expand(*scores.shape[:-1], 1)
        return torch.softmax(torch.cat([scores, column], dim=-1), dim=-1, dtype=torch.float32)[..., :-1].to(query.dtype)
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)


class HeadsInterface:
    """The per-head part of `StandardizedTransformer`, served from the adapter's `HeadsSpec`."""

    @property
    def queries(self) -> HeadProjections:
        """Per-head queries before rotary, (batch, heads, seq, head_dim); readable and writable."""
        return HeadProjections(self, "queries")

    @property
    def keys(self) -> HeadProjections:
        """Per-head keys before rotary, (batch, kv_heads, seq, head_dim); readable and writable."""
        return HeadProjections(self, "keys")

    @property
    def values(self) -> HeadProjections:
        """Per-head values, (batch, kv_heads, seq, head_dim); readable and writable."""
        return HeadProjections(self, "values")

    @property
    def rotated_queries(self) -> AttentionCallInputs:
        """Queries as the attention function receives them (after rotary), read-only."""
        return AttentionCallInputs(self, "rotated_queries", CALL_QUERY)

    @property
    def rotated_keys(self) -> AttentionCallInputs:
        """Keys as the attention function receives them (after rotary, with any cache), read-only."""
        return AttentionCallInputs(self, "rotated_keys", CALL_KEY)

    @property
    def heads_output(self) -> HeadsOutput:
        """Each head's output before the output projection, (batch, seq, heads, head_dim); writable."""
        return HeadsOutput(self)

    def ablate_heads(self, layer: int, heads: Union[int, Sequence[int]]) -> None:
        """Inside a trace, zero the outputs of ``heads`` in ``layer`` before its output projection."""
        items = [heads] if isinstance(heads, int) else list(heads)
        if not items:
            raise LayerIndexError("no head was given; pass a head index or a non-empty list of them.")
        chosen = sorted({normalize_index(head, self.num_heads, "head", "num_heads") for head in items})
        ablated = self.heads_output[layer].clone()
        ablated[:, :, chosen] = 0
        self.heads_output[layer] = ablated

    def attention_patterns(self, index: int) -> torch.Tensor:
        """Inside a trace: layer ``index``'s attention probabilities recomputed from the rotated
        queries and keys, with the family's scaling, soft-cap, mask and declared sinks (the sink
        column dropped, as in `attention_probabilities`); works under sdpa. Read-only.
        """
        args, kwargs = attention_call(self, index, f"attention_patterns({index})").inputs
        query_at, key_at, _, mask_at = heads_spec(self, "attention_patterns").call_arguments
        return recompute_probabilities(
            args[query_at],
            args[key_at],
            _call_argument(args, kwargs, mask_at, "attention_mask"),
            kwargs.get("scaling"),
            kwargs.get("softcap"),
            sink_logits(self, index),
        )
