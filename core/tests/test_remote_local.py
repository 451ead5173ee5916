"""Every accessor and built-in method gives bit-identical results through nnsight's remote simulation.

``remote="local"`` serializes the request exactly as for NDIF, deserializes it with
the user's modules hidden and runs it here. Here the simulated server is stricter
than nnsight's: while the request is deserialized, importing nnrosetta, its
conformance package, any plugin or pluggy fails, as on a server that has never
heard of them (nnsight alone hides only the loaded modules, and an installed
package could be imported again). So what runs in the trace must have travelled by
value. Each method that runs several traces must arrive as ONE request (a session).

Three families: sequential (llama), fused projections (gpt2), mixture of experts (mixtral).
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any, Callable

import pytest
import torch
from nnsight.schema.request import RequestModel

from nnrosetta import StandardizedTransformer
from nnrosetta.interventions import (
    activation_patching,
    attribution_patching,
    logit_lens,
    patchscope_lens,
    run_with_cache,
    steering_vector,
)
from nnrosetta.prompts import Prompt, run_prompts
from nnrosetta.remote import by_value_modules
from nnrosetta_conformance.tiny import build_tiny

FAMILIES = ("llama", "gpt2", "mixtral")
PROMPTS = ["The capital of France is", "Hi"]
CLEAN, CORRUPTED = ["The cat sat on the mat"], ["The dog sat on the mat"]


class _Refused(importlib.abc.MetaPathFinder):
    """Refuses to import the given top-level packages, as a server without them would."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.roots:
            raise ModuleNotFoundError(f"No module named {name!r} (the simulated server does not have it)", name=name)
        return None


@pytest.fixture
def requests(monkeypatch) -> list[int]:
    """Deserialize every request on a server without nnrosetta, its plugins or pluggy; count them."""
    deserialize = RequestModel.deserialize
    refused = _Refused(set(by_value_modules()) | {"pluggy"})
    count: list[int] = []

    def on_the_server(*args: Any, **kwargs: Any) -> Any:
        count.append(1)
        sys.meta_path.insert(0, refused)
        try:
            return deserialize(*args, **kwargs)
        finally:
            sys.meta_path.remove(refused)

    monkeypatch.setattr(RequestModel, "deserialize", staticmethod(on_the_server))
    return count


@pytest.fixture(scope="module", params=FAMILIES)
def model(request) -> StandardizedTransformer:
    hf_model, tokenizer = build_tiny(request.param)
    return StandardizedTransformer(hf_model, tokenizer=tokenizer, enable_attention_probs=True)


def _equal(local: Any, remote: Any, where: str = "result") -> None:
    """Bit for bit, through dicts, mappings, tuples and lists of tensors."""
    if isinstance(local, torch.Tensor):
        assert isinstance(remote, torch.Tensor) and torch.equal(local, remote), where
    elif hasattr(local, "keys"):
        assert list(local.keys()) == list(remote.keys()), where
        for key in local.keys():
            _equal(local[key], remote[key], f"{where}[{key!r}]")
    elif isinstance(local, (tuple, list)):
        assert len(local) == len(remote), where
        for index, (a, b) in enumerate(zip(local, remote)):
            _equal(a, b, f"{where}[{index}]")
    else:
        assert local == remote, where


def accessors(model: StandardizedTransformer, remote: Any) -> dict[str, torch.Tensor]:
    """Every accessor read at layer 0 and written at layer 1 (the last), in forward order, in one trace."""
    read, written = 0, model.num_layers - 1
    moe = model.is_moe
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad(), model.trace(PROMPTS, remote=remote):
        out["token_embeddings"] = model.token_embeddings.save()
        out["layers_input"] = model.layers_input[read].save()
        out["queries"] = model.queries[read].save()
        out["keys"] = model.keys[read].save()
        out["values"] = model.values[read].save()
        out["attention_probabilities"] = model.attention_probabilities[read].save()
        out["heads_output"] = model.heads_output[read].save()
        out["attentions_output"] = model.attentions_output[read].save()
        out["mlps_input"] = model.mlps_input[read].save()
        if moe:
            out["routers_output"] = model.routers_output[read].save()
            top = model.router_top_k[read]
            out["router_top_k.indices"], out["router_top_k.weights"] = top.indices.save(), top.weights.save()
        out["mlps_output"] = model.mlps_output[read].save()
        out["layers_output"] = model.layers_output[read].save()

        model.attention_probabilities[written] = model.attention_probabilities[written] * 0.5
        model.heads_output[written] = model.heads_output[written] * 2
        model.attentions_output[written] = model.attentions_output[written] * 0.5
        if moe:
            top = model.router_top_k[written]
            model.router_top_k[written] = (top.indices.flip(-1), top.weights)
        model.mlps_output[written] = model.mlps_output[written] * 0.5
        model.layers_output[written] = model.layers_output[written] + 1
        out["logits"] = model.logits.save()
    return out


def steering(model: StandardizedTransformer, remote: Any) -> dict[str, torch.Tensor]:
    vector = steering_vector(model, ["I love the sunny days"], ["I hate the cold rain"], 0, remote=remote)
    with torch.no_grad(), model.trace(PROMPTS, remote=remote):
        model.steer(0, vector, factor=4.0, token_positions=[-1])
        logits = model.logits.save()
    return {"vector": vector, "logits": logits}


def target_prompts(model: StandardizedTransformer) -> list[Prompt]:
    targets = {"paris": "Paris", "london": "London"}
    return [Prompt.from_strings(text, targets, model.tokenizer) for text in PROMPTS + ["The capital of Spain is"]]


#: Each method as called by a user, with ``remote`` passed through; the last number is its requests.
METHODS: dict[str, tuple[Callable[[StandardizedTransformer, Any], Any], int]] = {
    "accessors": (accessors, 1),
    "steering": (steering, 2),
    "logit_lens": (lambda model, remote: logit_lens(model, PROMPTS, positions=None, remote=remote), 1),
    "patchscope_lens": (lambda model, remote: patchscope_lens(model, PROMPTS, remote=remote), 1),
    "activation_patching": (
        lambda model, remote: activation_patching(model, CLEAN, CORRUPTED, positions=[-2, -1], batch_size=2, remote=remote),
        1,
    ),
    "attribution_patching": (
        lambda model, remote: attribution_patching(model, CLEAN, CORRUPTED, component="mlps", remote=remote),
        1,
    ),
    "run_with_cache": (lambda model, remote: run_with_cache(model, PROMPTS, remote=remote), 1),
    "run_prompts": (
        lambda model, remote: run_prompts(model, target_prompts(model), batch_size=2, get_probs_func=logit_lens, remote=remote),
        1,
    ),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_remote_local_is_bit_identical_to_the_local_run(model, method, requests) -> None:
    run, expected_requests = METHODS[method]
    local = run(model, False)
    assert requests == [], "the local run sent a request"
    remote = run(model, "local")
    _equal(local, remote, method)
    assert len(requests) == expected_requests, f"{method} sent {len(requests)} requests, not {expected_requests}"


def test_the_accessor_writes_changed_the_run(model) -> None:
    """The written run differs from a plain one: the remote comparison above covers writes, not no-ops."""
    with torch.no_grad(), model.trace(PROMPTS):
        plain = model.logits.save()
    assert not torch.equal(accessors(model, False)["logits"], plain)


def test_the_simulated_server_refuses_what_did_not_travel(requests) -> None:
    """A request naming pluggy by reference fails to deserialize: the refusal above is real."""
    import pluggy

    hf_model, tokenizer = build_tiny("llama")
    model = StandardizedTransformer(hf_model, tokenizer=tokenizer, check=False)
    marker = pluggy.HookimplMarker("by-reference")
    with pytest.raises(ModuleNotFoundError, match="No module named .pluggy"):
        with torch.no_grad(), model.trace("Hi", remote="local"):
            name = marker.project_name
            model.logits.save()
    assert len(requests) == 1
