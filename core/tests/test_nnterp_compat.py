"""nnrosetta.nnterp: every public name of nnterp's module layout, on tiny models of four families.

Each value is checked against a plain HuggingFace forward (or ``generate``) with
torch hooks, written by hand per family (nnsight not involved); module lookups
against the HuggingFace modules themselves.
"""

from __future__ import annotations

import copy
import functools
import re
import runpy
import warnings
from pathlib import Path

import pytest
import torch
from interventions_support import encode, family_params, hf_forward
from nnsight import LanguageModel
from tokenizers import processors

import nnrosetta
import nnrosetta.nnterp as nnterp
from nnrosetta import CapabilityError, InvalidInputError, LayerIndexError, NnrosettaError, Registry, RenamingError, UnsupportedArchitectureError
from nnrosetta.display.heatmap import token_label
from nnrosetta.errors import MissingDependencyError
from nnrosetta.nnterp import display, interventions, nnsight_utils, prompt_utils, rename_utils
from nnrosetta_conformance.tiny import build_tiny, claimed_tiny_types

PROMPTS = ["The capital of France is", "Hi", "The cat sat on the mat and"]
SOURCES = ["The cat sat on the mat", "Water boils at one hundred"]
TARGETS = ["The capital of France is", "The cat sat on the"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "nnterp.md"

#: Hand-written HuggingFace paths per family: embeddings, layers, final norm, attention, MLP (in a layer).
HF_PATHS = {
    "llama": ("model.embed_tokens", "model.layers", "model.norm", "self_attn", "mlp"),
    "gemma2": ("model.embed_tokens", "model.layers", "model.norm", "self_attn", "mlp"),
    "mixtral": ("model.embed_tokens", "model.layers", "model.norm", "self_attn", "mlp"),
    "gpt2": ("transformer.wte", "transformer.h", "transformer.ln_f", "attn", "mlp"),
}
#: Families whose HuggingFace tree has the Llama layout a plain nnsight model is read with.
LLAMA_LAYOUT = ("llama", "gemma2", "mixtral")

#: The public names of each compatibility module; a name added without a test here fails.
PUBLIC_NAMES = {
    nnterp: {"ModuleAccessor", "RenameConfig", "StandardizedTransformer", "display", "interventions",
             "nnsight_utils", "prompt_utils", "rename_utils"},
    interventions: {"TargetPrompt", "TargetPromptBatch", "it_repeat_prompt", "logit_lens", "patch_object_attn_lens",
                    "patchscope_generate", "patchscope_lens", "repeat_prompt"},
    prompt_utils: {"Prompt", "get_first_tokens", "next_token_probs", "run_prompts"},
    nnsight_utils: {"collect_last_token_activations_session", "collect_token_activations_batched", "get_attention",
                    "get_attention_output", "get_layer", "get_layer_input", "get_layer_output", "get_layers",
                    "get_logits", "get_mlp", "get_mlp_output", "get_next_token_probs", "get_num_layers",
                    "get_token_activations", "get_token_embeddings", "get_unembed", "get_unembed_norm",
                    "project_on_vocab"},
    rename_utils: {"ModuleAccessor", "RenameConfig", "RenamingError", "get_rename_dict"},
    display: {"plot_topk_tokens", "prompts_to_df"},
}


def path(root, dotted: str):
    return functools.reduce(getattr, dotted.split("."), root)


@functools.lru_cache(maxsize=None)
def compat(family: str) -> nnterp.StandardizedTransformer:
    """A tiny model of ``family`` through the compatibility class, with a tokenizer of its own."""
    hf_model, tokenizer = build_tiny(family)
    return nnterp.StandardizedTransformer(hf_model, tokenizer=copy.deepcopy(tokenizer))


@functools.lru_cache(maxsize=None)
def plain(family: str) -> LanguageModel:
    """A tiny model of ``family`` as a plain nnsight LanguageModel (no standard names)."""
    hf_model, tokenizer = build_tiny(family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LanguageModel(hf_model, tokenizer=copy.deepcopy(tokenizer))


class HF:
    """The HuggingFace modules of a wrapped tiny model, found by the hand-written paths."""

    def __init__(self, model, family: str) -> None:
        self.model = getattr(model, "_module", model)
        embed, layers, norm, self.attn_name, self.mlp_name = HF_PATHS[family]
        self.embed, self.layers, self.norm = (path(self.model, p) for p in (embed, layers, norm))
        self.lm_head = self.model.lm_head

    def attn(self, layer: int) -> torch.nn.Module:
        return getattr(self.layers[layer], self.attn_name)

    def mlp(self, layer: int) -> torch.nn.Module:
        return getattr(self.layers[layer], self.mlp_name)


@pytest.fixture(params=family_params())
def family(request) -> str:
    return request.param


def test_namespace_mirrors_nnterp_layout():
    for module, names in PUBLIC_NAMES.items():
        assert set(module.__all__) == names, module.__name__
        assert all(hasattr(module, name) for name in names)
    from nnrosetta.nnterp.interventions import logit_lens  # the import nnterp code writes

    assert logit_lens is nnrosetta.interventions.logit_lens
    assert rename_utils.RenamingError is nnrosetta.RenamingError
    assert issubclass(nnterp.StandardizedTransformer, nnrosetta.StandardizedTransformer)


# -- nnsight_utils -------------------------------------------------------------


def read_everything(model, encoding) -> dict:
    """Every value the helpers read, in forward order, in one trace."""
    saved: dict = {}
    with torch.no_grad(), model.trace(encoding):
        saved["embeddings"] = nnsight_utils.get_token_embeddings(model).save()
        for layer in range(nnsight_utils.get_num_layers(model)):
            saved[f"layer.{layer}.input"] = nnsight_utils.get_layer_input(model, layer).save()
            saved[f"attention.{layer}"] = nnsight_utils.get_attention_output(model, layer).save()
            saved[f"mlp.{layer}"] = nnsight_utils.get_mlp_output(model, layer).save()
            saved[f"layer.{layer}"] = nnsight_utils.get_layer_output(model, layer).save()
        saved["logits"] = nnsight_utils.get_logits(model).save()
        saved["probs"] = nnsight_utils.get_next_token_probs(model).save()
    return saved


def hf_everything(model, family: str, encoding) -> dict:
    hf = HF(model, family)
    capture = {"embeddings": hf.embed}
    for layer in range(len(hf.layers)):
        capture.update({f"attention.{layer}": hf.attn(layer), f"mlp.{layer}": hf.mlp(layer), f"layer.{layer}": hf.layers[layer]})
    logits, captured = hf_forward(
        model, encoding, capture=capture, capture_inputs={f"layer.{i}": hf.layers[i] for i in range(len(hf.layers))}
    )
    return {**captured, "logits": logits, "probs": logits[:, -1].softmax(-1)}


def assert_same_values(read: dict, expected: dict) -> None:
    assert set(read) == set(expected)
    for name, value in expected.items():
        assert torch.equal(read[name], value), name


def assert_modules_are_hfs(model, family: str) -> None:
    hf = HF(model, family)
    assert nnsight_utils.get_num_layers(model) == len(hf.layers) == 2
    assert nnsight_utils.get_layers(model)._module is hf.layers
    for layer in (0, 1, -1):
        assert nnsight_utils.get_layer(model, layer)._module is hf.layers[layer]
        assert nnsight_utils.get_attention(model, layer)._module is hf.attn(layer)
        assert nnsight_utils.get_mlp(model, layer)._module is hf.mlp(layer)
    assert nnsight_utils.get_unembed_norm(model)._module is hf.norm
    assert nnsight_utils.get_unembed(model)._module is hf.lm_head
    with pytest.raises(LayerIndexError, match="num_layers=2"):
        nnsight_utils.get_layer(model, 2)


def test_nnsight_utils_on_a_standardized_model(family):
    model = compat(family)
    encoding = encode(model, PROMPTS)
    read = read_everything(model, encoding)
    assert_same_values(read, hf_everything(model, family, encoding))
    assert_modules_are_hfs(model, family)
    # Through the family's own final projection: Gemma 2's soft-capping included.
    projected = nnsight_utils.project_on_vocab(model, read["layer.1"])
    assert torch.allclose(projected, read["logits"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", LLAMA_LAYOUT)
def test_nnsight_utils_on_a_plain_language_model(family):
    model = plain(family)
    encoding = encode(model, PROMPTS)
    read = read_everything(model, encoding)
    assert_same_values(read, hf_everything(model, family, encoding))
    assert_modules_are_hfs(model, family)
    hf = HF(model, family)
    with torch.no_grad():
        expected = hf.lm_head(hf.norm(read["layer.1"]))
        assert torch.equal(nnsight_utils.project_on_vocab(model, read["layer.1"]), expected)
    if family == "gemma2":  # a plain model knows no soft-capping: the standardized one does
        assert not torch.allclose(expected, read["logits"], atol=1e-3)


def test_plain_models_of_another_layout_are_refused_with_a_hint():
    model = plain("gpt2")
    with pytest.raises(RenamingError, match=r"model\.layers.*StandardizedTransformer"):
        nnsight_utils.get_layers(model)


# -- token activations ---------------------------------------------------------


def expected_tokens(model, family: str, prompts: list[str], layers: list[int], index: int, batch_size: int) -> torch.Tensor:
    """(layers, prompts, hidden): HF layer outputs at token ``index`` of each prompt's own tokens, batch by batch."""
    hf = HF(model, family)
    chunks = []
    for start in range(0, len(prompts), batch_size):
        encoding = encode(model, prompts[start : start + batch_size])
        _, captured = hf_forward(model, encoding, capture={str(i): hf.layers[i] for i in range(len(hf.layers))})
        mask = encoding["attention_mask"]
        lengths = mask.sum(-1)
        first = mask.argmax(-1)  # the first real token (left or right padding)
        columns = first + index % lengths
        rows = torch.arange(len(columns))
        chunks.append(torch.stack([captured[str(layer)][rows, columns] for layer in layers]))
    return torch.cat(chunks, dim=1)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_token_activations_index_each_prompts_own_tokens(family, padding_side):
    model = compat(family)
    model.tokenizer.padding_side = padding_side
    try:
        for index in (-1, 0, 1):
            expected = expected_tokens(model, family, PROMPTS, [1, 0, 1], index, batch_size=3)
            got = nnsight_utils.get_token_activations(model, PROMPTS, layers=[1, 0, -1], idx=index)
            assert got.shape == (3, 3, model.hidden_size) and got.device.type == "cpu"
            assert torch.equal(got, expected), index
        if padding_side == "right":  # the raw last column is padding for the short prompts
            encoding = encode(model, PROMPTS)
            assert encoding["attention_mask"][1, -1] == 0
        batched = expected_tokens(model, family, PROMPTS, [0, 1], -1, batch_size=2)
        pages: list = []
        progress = lambda batches: pages.append(len(batches)) or batches  # noqa: E731
        for use_session in (True, False):
            got = nnsight_utils.collect_token_activations_batched(
                model, PROMPTS, 2, tqdm=progress, use_session=use_session
            )
            assert torch.equal(got, batched), use_session
        session = nnsight_utils.collect_last_token_activations_session(model, PROMPTS, batch_size=2, layers=[1])
        assert torch.equal(session, batched[[1]])
        assert pages == [2, 2]
    finally:
        model.tokenizer.padding_side = "left"


def test_token_activations_inside_an_open_trace_and_with_another_getter(family):
    model = compat(family)
    saved: list = []
    with torch.no_grad(), model.trace(PROMPTS) as tracer:
        saved.append(nnsight_utils.get_token_activations(model, layers=[0], tracer=tracer, idx=-2))
    assert torch.equal(saved[0], expected_tokens(model, family, PROMPTS, [0], -2, 3))
    hf = HF(model, family)
    encoding = encode(model, PROMPTS)
    _, captured = hf_forward(model, encoding, capture={"mlp": hf.mlp(1)})
    got = nnsight_utils.get_token_activations(model, PROMPTS, layers=1, get_activations=nnsight_utils.get_mlp_output)
    assert torch.equal(got[0], captured["mlp"][:, -1])


@pytest.mark.parametrize("family", LLAMA_LAYOUT)
def test_token_activations_on_a_plain_language_model(family):
    model = plain(family)
    expected = expected_tokens(model, family, PROMPTS, [0, 1], -1, 2)
    assert torch.equal(nnsight_utils.collect_last_token_activations_session(model, PROMPTS, 2), expected)


def test_token_activations_refuse_bad_input():
    model = compat("llama")
    shortest = int(encode(model, PROMPTS)["attention_mask"].sum(-1).min())
    with pytest.raises(LayerIndexError, match=f"shortest prompt, which has {shortest} tokens"):
        nnsight_utils.get_token_activations(model, PROMPTS, idx=shortest)
    with pytest.raises(LayerIndexError, match="num_layers=2"):
        nnsight_utils.get_token_activations(model, PROMPTS, layers=[3])
    with pytest.raises(InvalidInputError, match="batch_size"):
        nnsight_utils.collect_token_activations_batched(model, PROMPTS, 0)
    with pytest.raises(InvalidInputError, match="no prompts"):
        nnsight_utils.get_token_activations(model)


# -- StandardizedTransformer: nnterp's keywords and spellings ------------------


def test_standard_names_under_model_model(family):
    model = compat(family)
    hf = HF(model, family)
    assert model.model.layers is model.layers and model.model.layers._module is hf.layers
    assert model.model.ln_final is model.ln_final and model.model.ln_final._module is hf.norm
    assert model.model.embed_tokens is model.embed_tokens and model.model.embed_tokens._module is hf.embed
    backbone = path(hf.model, HF_PATHS[family][1].rsplit(".", 1)[0])
    assert model.model._module is backbone
    encoding = encode(model, PROMPTS)
    saved: list = []
    with torch.no_grad(), model.trace(encoding):
        saved.append(model.model.layers[0].output.save())
        saved.append(model.model.ln_final.output.save())
    _, captured = hf_forward(model, encoding, capture={"layer": hf.layers[0], "norm": hf.norm})
    assert torch.equal(saved[0], captured["layer"]) and torch.equal(saved[1], captured["norm"])


def test_input_size_and_next_token_probs_unsqueeze(family):
    model = compat(family)
    encoding = encode(model, PROMPTS)
    sizes: list = []
    saved: list = []
    with torch.no_grad(), model.trace(encoding):
        sizes.append(model.input_size)
        saved.append(model.next_token_probs_unsqueeze.save())
    logits, _ = hf_forward(model, encoding)
    assert sizes == [encoding["input_ids"].shape]
    assert saved[0].shape == (3, 1, model.vocab_size)
    assert torch.equal(saved[0], logits[:, -1:].softmax(-1))


def test_steer_positions_is_a_deprecated_token_positions(family):
    model = compat(family)
    encoding = encode(model, PROMPTS)
    vector = torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(0))
    hf = HF(model, family)

    def add(hidden):
        hidden = hidden.clone()
        hidden[:, [1, 3]] += 2 * vector
        return hidden

    expected, _ = hf_forward(model, encoding, replace=(hf.layers[0], add))
    results: list = []
    for arguments in ({"positions": [1, 3]}, {"positions": torch.tensor([1, 3])}, {"token_positions": [1, 3]}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.no_grad(), model.trace(encoding):
                model.steer(0, vector, 2, **arguments)
                results.append(model.logits.save())
        deprecated = [w for w in caught if issubclass(w.category, DeprecationWarning) and "token_positions" in str(w.message)]
        assert len(deprecated) == ("positions" in arguments), arguments
    assert all(torch.equal(result, expected) for result in results)
    with pytest.raises(NnrosettaError, match="both positions and token_positions"):
        with model.trace(encoding):
            model.steer(0, vector, positions=[1], token_positions=[1])


def test_skip_layers_takes_nnterps_argument_names(family):
    model = compat(family)
    encoding = encode(model, PROMPTS)
    hf = HF(model, family)
    _, inputs = hf_forward(model, encoding, capture_inputs={"first": hf.layers[0]})
    expected, _ = hf_forward(model, encoding, replace=(hf.layers[0], lambda hidden: inputs["first.input"]))
    saved: list = []
    with torch.no_grad(), model.trace(encoding):
        model.skip_layers(start_layer=0, end_layer=0)
        saved.append(model.logits.save())
    assert torch.equal(saved[0], expected)


def test_nnterp_load_keywords_are_accepted(tmp_path):
    from nnrosetta_conformance.tiny import save_tiny

    folder = save_tiny("llama", tmp_path / "tiny")
    model = nnterp.StandardizedTransformer(
        str(folder), trust_remote_code=False, check_renaming=True, allow_dispatch=True,
        check_attn_probs_with_trace=True, enable_attention_probs=False,
    )
    hf = HF(model, "llama")
    assert model.model.ln_final._module is hf.norm
    encoding = encode(model, PROMPTS)
    saved: list = []
    with torch.no_grad(), model.trace(encoding):
        saved.append(model.logits.save())
    assert torch.equal(saved[0], hf_forward(model, encoding)[0])


# -- rename overrides at load, and ModuleAccessor ------------------------------

GPT2_BY_NAME = nnterp.RenameConfig(
    model_name="transformer", layers_name="h", ln_final_name="ln_f", attn_name="attn", embed_tokens_name="wte",
    attn_head_config_key=["no_such_key", "n_head"], hidden_size_config_key=32,
)


def test_get_rename_dict():
    assert rename_utils.get_rename_dict(GPT2_BY_NAME) == {
        "transformer.wte": "embed_tokens", "transformer.h": "layers", "transformer.ln_f": "ln_final", "attn": "self_attn",
    }
    anywhere = nnterp.RenameConfig(layers_name=["h", "blocks"], ln_final_name="model.final_norm", lm_head_name="out")
    assert rename_utils.get_rename_dict(anywhere) == {
        "*.h": "layers", "*.blocks": "layers", "model.final_norm": "ln_final", "out": "lm_head",
    }
    assert rename_utils.get_rename_dict() == {}


@pytest.mark.parametrize(
    "load",
    [
        {"rename_config": GPT2_BY_NAME},
        {"rename_config": nnterp.RenameConfig(embed_tokens_name="wte", ln_final_name="ln_f"),
         "layers_rename": "h", "attn_rename": "attn"},
    ],
    ids=["rename_config", "rename keywords"],
)
def test_rename_config_serves_a_model_no_adapter_claims(load):
    hf_model, tokenizer = build_tiny("gpt2")
    empty = Registry(autoload=False)
    with pytest.raises(UnsupportedArchitectureError):
        nnterp.StandardizedTransformer(hf_model, tokenizer=tokenizer, registry=empty)
    model = nnterp.StandardizedTransformer(hf_model, tokenizer=copy.deepcopy(tokenizer), registry=empty, **load)
    assert model.adapter.name == "rename"
    assert (model.num_heads, model.hidden_size, model.num_layers) == (4, 32, 2)
    encoding = encode(model, PROMPTS)
    saved: list = []
    with torch.no_grad(), model.trace(encoding):
        saved.append(model.attentions_output[1].save())
        saved.append(model.layers_output[1].save())
        saved.append(model.logits.save())
    logits, captured = hf_forward(
        model, encoding, capture={"attn": hf_model.transformer.h[1].attn, "layer": hf_model.transformer.h[1]}
    )
    assert torch.equal(saved[0], captured["attn"]) and torch.equal(saved[1], captured["layer"])
    assert torch.equal(saved[2], logits)
    assert model.model.layers._module is hf_model.transformer.h


def test_rename_config_replaces_the_adapters_entry_for_a_claimed_type():
    hf_model, tokenizer = build_tiny("llama")
    other_norm = "model.layers.1.post_attention_layernorm"
    model = nnterp.StandardizedTransformer(
        hf_model, tokenizer=tokenizer, rename_config=nnterp.RenameConfig(ln_final_name=other_norm)
    )
    assert model.adapter.name == "llama" and model.adapter.rename[other_norm] == "ln_final"
    assert "model.norm" not in model.adapter.rename
    assert model.ln_final._module is hf_model.model.layers[1].post_attention_layernorm


@pytest.mark.parametrize(
    "config, words",
    [
        (nnterp.RenameConfig(ignore_mlp=True), "absent"),
        (nnterp.RenameConfig(attn_prob_source=lambda *a: None), "AttentionSpec"),
        (nnterp.RenameConfig(hidden_size_config_key="no_such_key"), "none of these keys"),
    ],
)
def test_rename_configs_that_cannot_be_served_are_refused(config, words):
    hf_model, tokenizer = build_tiny("llama")
    with pytest.raises(NnrosettaError, match=words):
        nnterp.StandardizedTransformer(hf_model, tokenizer=tokenizer, rename_config=config)


def test_module_accessor_gives_the_hf_modules_without_tracing(family):
    hf_model, _ = build_tiny(family)
    hf = HF(hf_model, family)
    accessor = nnterp.ModuleAccessor(hf_model)
    assert accessor.num_layers == len(accessor) == 2
    assert accessor.layers is accessor.get_layers() is hf.layers
    assert accessor.embed_tokens is accessor.get_embed_tokens() is hf.embed
    assert accessor.ln_final is accessor.get_ln_final() is hf.norm
    assert accessor.lm_head is accessor.get_lm_head() is hf.lm_head
    for layer in (0, 1, -1):
        assert accessor.get_layer(layer) is hf.layers[layer]
        assert accessor.get_attention(layer) is hf.attn(layer)
        assert accessor.get_mlp(layer) is hf.mlp(layer)
    assert accessor.attentions == [hf.attn(0), hf.attn(1)] and list(accessor) == list(hf.layers)


def test_module_accessor_with_a_rename_config_and_its_refusals():
    hf_model, _ = build_tiny("gpt2")
    empty = Registry(autoload=False)
    accessor = nnterp.ModuleAccessor(hf_model, rename_config=GPT2_BY_NAME, registry=empty)
    assert accessor.layers is hf_model.transformer.h and accessor.get_attention(1) is hf_model.transformer.h[1].attn
    with pytest.raises(UnsupportedArchitectureError):
        nnterp.ModuleAccessor(hf_model, registry=empty)
    wrong = nnterp.ModuleAccessor(hf_model, rename_config=nnterp.RenameConfig(ln_final_name="transformer.final"))
    with pytest.raises(RenamingError, match="transformer.final"):
        wrong.ln_final


@pytest.mark.skipif("opt" not in claimed_tiny_types(), reason="no installed plugin claims 'opt'")
def test_module_accessor_refuses_a_standard_name_that_is_a_span():
    hf_model, _ = build_tiny("opt")
    accessor = nnterp.ModuleAccessor(hf_model)
    assert accessor.layers is hf_model.model.decoder.layers
    assert accessor.get_attention(0) is hf_model.model.decoder.layers[0].self_attn
    with pytest.raises(CapabilityError, match="`mlp` is a span"):
        accessor.get_mlp(0)


# -- interventions -------------------------------------------------------------


def test_logit_lens_last_layer_is_the_output(family):
    model = compat(family)
    logits, _ = hf_forward(model, encode(model, PROMPTS))
    probs = interventions.logit_lens(model, PROMPTS)
    assert probs.shape == (3, 2, model.vocab_size)
    assert torch.equal(probs[:, -1], logits[:, -1].softmax(-1))


def test_patchscope_lens_keeps_the_layers_as_given(family):
    model = compat(family)
    hf = HF(model, family)
    target = interventions.repeat_prompt()
    layers = [1, 0, 1]
    probs = interventions.patchscope_lens(model, SOURCES, target, layers=layers, batch_size=1)
    assert probs.shape == (2, 3, model.vocab_size)
    _, sources = hf_forward(model, encode(model, SOURCES), capture={str(i): hf.layers[i] for i in range(2)})
    targets = encode(model, [target.prompt] * 2)
    for row, layer in enumerate(layers):

        def patch(hidden, layer=layer):
            hidden = hidden.clone()
            hidden[:, -1] = sources[str(layer)][:, -1]
            return hidden

        logits, _ = hf_forward(model, targets, replace=(hf.layers[layer], patch))
        assert torch.equal(probs[:, row], logits[:, -1].softmax(-1)), row
    latents = torch.randn(2, 3, model.hidden_size, generator=torch.Generator().manual_seed(1))
    by_latent = interventions.patchscope_lens(model, target_patch_prompts=target, layers=layers, latents=latents, batch_size=1)
    assert not torch.equal(by_latent[:, 0], by_latent[:, 2])  # the same layer, each with its own latent
    assert torch.equal(nnrosetta.interventions.patchscope_lens(model, SOURCES, target, layers=layers, batch_size=1), probs[:, [1, 0]])


def hf_generate(model, family: str, encoding: dict, layer: int, values: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """HuggingFace ``generate`` with ``values`` written at the last prompt token of ``layer``, in the prompt pass only."""
    hf = HF(model, family)

    def patch(module, args, out):
        hidden = out[0] if isinstance(out, tuple) else out
        if hidden.shape[1] == 1:  # a generation step (key-value cache): the prompt pass is over
            return None
        hidden = hidden.clone()
        hidden[:, -1] = values
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden

    handle = hf.layers[layer].register_forward_hook(patch)
    try:
        with torch.no_grad():
            return hf.model.generate(**encoding, max_new_tokens=new_tokens, do_sample=False,
                                     pad_token_id=model.tokenizer.pad_token_id)
    finally:
        handle.remove()


def test_patchscope_generate_returns_token_ids_per_layer(family):
    model = compat(family)
    hf = HF(model, family)
    target = interventions.repeat_prompt()
    _, sources = hf_forward(model, encode(model, SOURCES), capture={str(i): hf.layers[i] for i in range(2)})
    one_by_one = interventions.patchscope_generate(model, SOURCES, target, max_length=3, layers=[1, 0], max_batch_size=2)
    assert list(one_by_one) == [1, 0]
    targets = encode(model, [target.prompt] * 2)
    for layer, ids in one_by_one.items():
        expected = hf_generate(model, family, targets, layer, sources[str(layer)][:, -1], 3)
        assert torch.equal(ids, expected), layer
    assert list(interventions.patchscope_generate(model, SOURCES, target, max_length=1)) == [0, 1]
    if family != "mixtral":  # several layers in one generate: a bigger batch, same rounding for dense models
        together = interventions.patchscope_generate(model, SOURCES, target, max_length=3, layers=[1, 0])
        assert all(torch.equal(together[layer], one_by_one[layer]) for layer in (0, 1))
    with pytest.raises(InvalidInputError, match="max_batch_size"):
        interventions.patchscope_generate(model, SOURCES, target, max_batch_size=0)


def test_patch_object_attn_lens(family):
    model = compat(family)
    hf = HF(model, family)
    index, num_patches = 1, 2
    probs = interventions.patch_object_attn_lens(model, SOURCES, TARGETS, index, num_patches=num_patches, batch_size=1)
    assert probs.shape == (2, 2, model.vocab_size)
    _, sources = hf_forward(model, encode(model, SOURCES), capture_inputs={str(i): hf.attn(i) for i in range(2)})
    targets = encode(model, TARGETS)
    mask = targets["attention_mask"]
    columns = mask.argmax(-1) + index
    rows = torch.arange(2)
    for start in range(2):
        replace = {}
        for layer in range(start, min(start + num_patches, 2)):

            def patch(hidden, layer=layer):
                hidden = hidden.clone()
                hidden[rows, columns] = sources[f"{layer}.input"][:, -1]
                return hidden

            replace[hf.attn(layer)] = patch
        logits, _ = hf_forward(model, targets, replace_inputs=replace)
        assert torch.equal(probs[:, start], logits[:, -1].softmax(-1)), start
    plain_probs = hf_forward(model, targets)[0][:, -1].softmax(-1)
    assert not torch.equal(probs[:, 0], plain_probs)
    with pytest.raises(InvalidInputError, match="3 source prompts"):
        interventions.patch_object_attn_lens(model, SOURCES + ["x"], TARGETS, 1)


def test_target_prompt_batches():
    TargetPrompt, TargetPromptBatch = interventions.TargetPrompt, interventions.TargetPromptBatch
    batch = TargetPromptBatch.from_prompts(["a b", "c d e"], [0, -1])
    assert batch[1] == TargetPrompt("c d e", -1) and batch[-2] == TargetPrompt("a b", 0)
    assert list(batch) == [TargetPrompt("a b", 0), TargetPrompt("c d e", -1)]
    assert batch[1:] == TargetPromptBatch(("c d e",), (-1,))
    with pytest.raises(LayerIndexError, match="batch of 2"):
        batch[2]
    assert TargetPromptBatch.from_target_prompts(list(batch)) == batch
    assert TargetPromptBatch.from_target_prompt(TargetPrompt("x", 0), 3) == TargetPromptBatch(("x",) * 3, (0,) * 3)
    assert TargetPromptBatch.auto("x y", 2) == TargetPromptBatch(("x y", "x y"), (-1, -1))
    assert TargetPromptBatch.auto(TargetPrompt("x", 0), 2) == TargetPromptBatch(("x", "x"), (0, 0))
    assert TargetPromptBatch.auto(list(batch), 2) == batch and TargetPromptBatch.auto(batch, 2) is batch
    with pytest.raises(InvalidInputError, match="2 target prompts were given for 3"):
        TargetPromptBatch.auto(batch, 3)


def test_repeat_prompts():
    assert interventions.repeat_prompt() == interventions.TargetPrompt("cat cat\n1135 1135\nhello hello\n?", -1)
    assert interventions.repeat_prompt(["a", "b"], rel=" -> ", sep="; ", placeholder="x").prompt == "a -> a; b -> b; x"
    tokenizer = copy.deepcopy(compat("llama").tokenizer)
    with pytest.raises(InvalidInputError, match="no chat_template"):
        interventions.it_repeat_prompt(tokenizer)
    tokenizer.chat_template = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    reply = "a = a; ?"
    assert interventions.it_repeat_prompt(tokenizer, ["a"], rel=" = ", sep="; ") == interventions.TargetPrompt(
        f"<s><|user|>Repeat each word after me.\n<|assistant|>{reply}", -1
    )
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.bos_token_id)]
    )
    target = interventions.it_repeat_prompt(tokenizer, ["a"], rel=" = ", sep="; ")
    assert target.prompt == f"<|user|>Repeat each word after me.\n<|assistant|>{reply}"
    ids = tokenizer(target.prompt)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1 and tokenizer.decode(ids[-1:]).endswith("?")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
    with pytest.raises(InvalidInputError, match="prefilled assistant reply"):
        interventions.it_repeat_prompt(tokenizer)


# -- prompt_utils --------------------------------------------------------------


def first_ids(tokenizer, text: str) -> int:
    """The first token of ``text`` that is not whitespace alone (a lone space is no prediction of a word)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return next(i for i in ids if tokenizer.decode([i]).strip())


def test_get_first_tokens_takes_a_word_or_a_list():
    model = compat("llama")
    tokenizer = model.tokenizer
    paris = [first_ids(tokenizer, "Paris"), first_ids(tokenizer, " Paris")]
    assert prompt_utils.get_first_tokens("Paris", tokenizer) == list(dict.fromkeys(paris))
    both = prompt_utils.get_first_tokens(["Paris", "London"], model)  # a model is taken for its tokenizer
    assert both == list(dict.fromkeys(paris + [first_ids(tokenizer, "London"), first_ids(tokenizer, " London")]))


def test_prompts_targets_collisions_and_run(family):
    model = compat(family)
    Prompt = prompt_utils.Prompt
    bare = Prompt.from_strings(PROMPTS[0], "Paris", model.tokenizer)
    assert bare.target_strings == {"target": ("Paris",)}
    assert list(bare.target_tokens["target"]) == prompt_utils.get_first_tokens("Paris", model.tokenizer)
    listed = Prompt.from_strings(PROMPTS[0], ["Paris", "Madrid"], model.tokenizer)
    assert list(listed.target_tokens) == ["target"]
    clash = Prompt.from_strings(PROMPTS[0], {"a": "Paris", "b": ["Paris", "dog"], "c": "cat"}, model.tokenizer)
    assert not clash.has_no_collisions() and clash.has_no_collisions(ignore_targets="b")
    assert clash.has_no_collisions(["a"]) and Prompt("p", {"x": [1, 2], "y": [3]}).has_no_collisions()
    with pytest.raises(InvalidInputError, match="not categories"):
        clash.has_no_collisions("z")
    logits, _ = hf_forward(model, encode(model, [PROMPTS[0]]))
    expected = logits[:, -1].softmax(-1)
    ran = clash.run(model)
    for category, ids in clash.target_tokens.items():
        assert torch.equal(ran[category], expected[:, list(ids)].sum(-1)), category
    lens = clash.run(model, interventions.logit_lens)
    assert lens["a"].shape == (1, 2)
    by_layer = clash.get_target_probs(interventions.logit_lens(model, [PROMPTS[0]]), layer=-1)
    assert torch.equal(by_layer["a"], lens["a"][:, -1])
    assert torch.equal(prompt_utils.next_token_probs(model, PROMPTS), hf_forward(model, encode(model, PROMPTS))[0][:, -1].softmax(-1))


def test_run_prompts_with_nnterps_keywords(family):
    model = compat(family)
    prompts = [prompt_utils.Prompt.from_strings(p, {"city": ["Paris", "Madrid"], "animal": "dog"}, model.tokenizer) for p in PROMPTS]
    pages: list = []
    progress = lambda batches: pages.append(list(batches)) or batches  # noqa: E731
    result = prompt_utils.run_prompts(
        model, prompts, batch_size=2, get_probs_func=interventions.logit_lens, func_kwargs={"layers": [0]}, tqdm=progress
    )
    assert pages == [[0, 2]] and result["city"].shape == (3, 1)
    lens = torch.cat([interventions.logit_lens(model, PROMPTS[s : s + 2], layers=[0]) for s in (0, 2)])
    for row, prompt in enumerate(prompts):
        assert torch.equal(result["animal"][row], prompt.get_target_probs(lens[row])["animal"]), row


# -- display -------------------------------------------------------------------


def shown(tokenizer, token: int) -> str:
    """A token's text, or its vocabulary entry when it is a partial UTF-8 sequence."""
    text = tokenizer.decode([token])
    return tokenizer.convert_ids_to_tokens(token) if "\ufffd" in text else text


def test_plot_topk_tokens(tmp_path):
    model = compat("llama")
    probs = interventions.logit_lens(model, PROMPTS[:2])
    figure = display.plot_topk_tokens(probs, model.tokenizer, k=3, file=tmp_path / "topk.html")
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    assert len(heatmaps) == 2
    for heatmap, prompt_probs in zip(heatmaps, probs):
        top = prompt_probs.topk(3, dim=-1)
        assert torch.equal(torch.tensor(heatmap.z, dtype=torch.float32), top.values)
        texts = [[token_label(shown(model.tokenizer, int(i))) for i in row] for row in top.indices]
        assert [list(row) for row in heatmap.text] == texts
    assert "plotly" in (tmp_path / "topk.html").read_text()[:5000].lower()
    ids = display.plot_topk_tokens(probs[0], model.tokenizer, k=2, use_token_ids=True, file=tmp_path / "one.png", save_html=False)
    assert [list(row) for row in ids.data[0].text] == [[str(int(i)) for i in row] for row in probs[0].topk(2).indices]
    assert (tmp_path / "one.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInputError, match="one prompt"):
        display.plot_topk_tokens(probs, model.tokenizer, file=tmp_path / "two.png", save_html=False)


def test_prompts_to_df():
    tokenizer = compat("llama").tokenizer
    prompts = [prompt_utils.Prompt.from_strings("The capital of France is", {"city": "Paris"}, tokenizer)]
    ids = list(prompts[0].target_tokens["city"])
    rows = nnrosetta.display.prompt_rows(prompts, tokenizer)
    assert rows == [{"prompt": "The capital of France is", "city_strings": ["Paris"],
                     "city_tokens": [tokenizer.decode([i]) for i in ids]}]
    assert nnrosetta.display.prompt_rows(prompts)[0]["city_tokens"] == ids
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install pandas"):
            display.prompts_to_df(prompts, tokenizer)
    else:
        frame = display.prompts_to_df(prompts, tokenizer)
        assert frame.to_dict("records") == rows


# -- docs/nnterp.md ------------------------------------------------------------


def test_docs_examples_run_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks, f"{DOCS} has no python example"
    monkeypatch.chdir(tmp_path)
    for number, block in enumerate(blocks):
        script = tmp_path / f"nnterp_md_block_{number}.py"  # nnsight reads a trace's source back from a file
        script.write_text(block)
        runpy.run_path(str(script), run_name=f"docs_block_{number}")
