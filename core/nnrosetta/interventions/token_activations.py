"""One token's activations at many layers, for many prompts: the input of probes and steering vectors.

The token is indexed in each prompt's own tokens (``idx=-1``: its last token),
whatever side the tokenizer pads on: with right padding the last column of the
batch is padding for every shorter prompt, so a raw ``[:, -1]`` would read pad
tokens; here each row's position is taken from the attention mask. Results are
(layers, prompts, hidden), moved to the CPU.

`collect_last_token_activations_session` runs every batch inside ONE nnsight
session, so the whole collection is a single request when ``remote=True``.
Works on a `StandardizedTransformer` and on a plain nnsight model with the
Llama layout (see `module_access`); ``get_activations(model, layer)`` picks the
value (default: the layer's output).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch

from ..accessors import normalize_index
from ..errors import InvalidInputError, LayerIndexError
from .inputs import Prompts, encode, prompt_list
from .module_access import get_layer_output, get_num_layers

GetActivations = Callable[[Any, int], torch.Tensor]
Progress = Callable[[Iterable], Iterable]


def token_positions(attention_mask: torch.Tensor, index: int) -> torch.Tensor:
    """Per row, the padded position of token ``index`` of that row's own tokens (any padding side)."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidInputError(f"idx={index!r} must be an int token index (-1 for each prompt's last token).")
    mask = attention_mask.bool()
    lengths = mask.sum(dim=-1)
    shortest = int(lengths.min())
    if not -shortest <= index < shortest:
        raise LayerIndexError(
            f"idx={index} is out of range for the shortest prompt, which has {shortest} tokens; "
            f"use 0..{shortest - 1} or -1..-{shortest}."
        )
    wanted = index % lengths  # the k-th real token of each row
    rank = mask.long().cumsum(dim=-1) - 1
    return ((rank == wanted.unsqueeze(-1)) & mask).long().argmax(dim=-1)


def _layers(model: Any, layers: Union[int, Sequence[int], None]) -> tuple[list[int], list[int]]:
    """(layers as given, made non-negative; the same sorted once, the order they are read in)."""
    count = get_num_layers(model)
    items = list(range(count)) if layers is None else [layers] if isinstance(layers, int) else list(layers)
    if not items:
        raise LayerIndexError(f"`layers` is empty; pass layer indices or None for all {count} layers.")
    given = [normalize_index(layer, count, "layer", "num_layers") for layer in items]
    return given, sorted(set(given))


def _read(
    model: Any, read: list[int], given: list[int], get_activations: GetActivations, positions: torch.Tensor
) -> torch.Tensor:
    """Inside a trace: (layers as given, batch, hidden) at each row's position, on the CPU."""
    values = []
    for layer in read:
        value = get_activations(model, layer)
        rows = torch.arange(value.shape[0], device=value.device)
        values.append(value[rows, positions.to(value.device)].detach().cpu())
    return torch.stack(values)[[read.index(layer) for layer in given]]


def _batches(model: Any, prompts: Prompts, batch_size: int, index: int) -> list[tuple[dict, torch.Tensor]]:
    items = prompt_list(prompts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size={batch_size!r} must be a positive int.")
    batches = []
    for start in range(0, len(items), batch_size):
        encoding = encode(model, items[start : start + batch_size])
        batches.append((encoding, token_positions(encoding["attention_mask"], index)))
    return batches


def get_token_activations(
    model: Any,
    prompts: Optional[Prompts] = None,
    layers: Union[int, Sequence[int], None] = None,
    get_activations: Optional[GetActivations] = None,
    remote: bool = False,
    idx: Optional[int] = None,
    tracer: Any = None,
) -> torch.Tensor:
    """Activations of token ``idx`` (default -1, the last) of each prompt at each layer: (layers, prompts, hidden).

    Layers come back in the order given (repeats kept). With ``tracer`` (an open trace
    of ``model``), nothing new runs: the values are read from that trace, the positions
    from its attention mask, and the result is saved; call it before reading anything
    later in the forward, and leave ``prompts`` out.
    """
    index = -1 if idx is None else idx
    get_activations = get_activations or get_layer_output
    given, read = _layers(model, layers)
    if tracer is not None:
        if prompts is not None:
            raise InvalidInputError("give `prompts` or `tracer`, not both: with a tracer the prompts are the trace's.")
        args, kwargs = model.inputs
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        positions = token_positions(torch.ones_like(ids) if mask is None else mask, index)
        return _read(model, read, given, get_activations, positions).save()
    if prompts is None:
        raise InvalidInputError("no prompts were given; pass a prompt or a list of prompts (or an open tracer).")
    items = prompt_list(prompts)
    ((encoding, positions),) = _batches(model, items, len(items), index)
    return _trace_batch(model, encoding, positions, read, given, get_activations, remote)


def _trace_batch(model, encoding, positions, read, given, get_activations, remote) -> torch.Tensor:
    """One trace of one encoded batch, stopped once the last layer read has run."""
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.trace(encoding, remote=remote) as trace:
        saved.append(_read(model, read, given, get_activations, positions).save())
        trace.stop()
    return saved[0]


def collect_token_activations_batched(
    model: Any,
    prompts: Prompts,
    batch_size: int = 32,
    layers: Union[int, Sequence[int], None] = None,
    get_activations: Optional[GetActivations] = None,
    remote: bool = False,
    idx: Optional[int] = None,
    tqdm: Optional[Progress] = None,
    use_session: bool = True,
) -> torch.Tensor:
    """`get_token_activations` over ``prompts`` in batches of ``batch_size``: (layers, prompts, hidden).

    ``use_session`` runs every batch in one nnsight session (one request when remote);
    otherwise one trace per batch. ``tqdm`` wraps the batches for a progress bar.
    """
    if use_session:
        return collect_last_token_activations_session(
            model, prompts, batch_size, layers, get_activations, remote, idx, tqdm
        )
    index = -1 if idx is None else idx
    get_activations = get_activations or get_layer_output
    given, read = _layers(model, layers)
    batches = _batches(model, prompts, batch_size, index)
    chunks = [
        _trace_batch(model, encoding, positions, read, given, get_activations, remote)
        for encoding, positions in (tqdm(batches) if tqdm else batches)
    ]
    return torch.cat(chunks, dim=1)


def collect_last_token_activations_session(
    model: Any,
    prompts: Prompts,
    batch_size: int = 32,
    layers: Union[int, Sequence[int], None] = None,
    get_activations: Optional[GetActivations] = None,
    remote: bool = False,
    idx: Optional[int] = None,
    tqdm: Optional[Progress] = None,
) -> torch.Tensor:
    """Token ``idx`` (default -1) of every prompt at each layer, all batches in ONE session: (layers, prompts, hidden).

    ``tqdm`` wraps the batches when the session runs here; a remote session is one
    request, run where the model is, so it shows no progress and ``tqdm`` is not used.
    """
    index = -1 if idx is None else idx
    get_activations = get_activations or get_layer_output
    given, read = _layers(model, layers)
    batches = _batches(model, prompts, batch_size, index)
    chunks: list[torch.Tensor] = []
    saved: list[torch.Tensor] = []
    with torch.no_grad(), model.session(remote=remote):
        for encoding, positions in tqdm(batches) if tqdm and not remote else batches:
            with model.trace(encoding) as trace:
                chunks.append(_read(model, read, given, get_activations, positions))
                trace.stop()
        saved.append(torch.cat(chunks, dim=1).save())
    return saved[0]
