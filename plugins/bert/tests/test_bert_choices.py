"""BERT-family choices the generic suite cannot see: post-norm sublayers, X-MOD's adapter, factorized
embeddings, and the configs and types refused.

The suite skips the residual sum for post-norm layers (nothing is added as is), so the
first test ties each span to what the layer's own LayerNorm adds it to: a span ending at
`attention.output` or `output` (the modules that already add the residual and normalise)
would pass every generic check and fail here.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import nnrosetta_conformance
from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta.tiny import build_tokenizer, save_tiny
from nnrosetta_bert import REFUSED
from nnrosetta_conformance.checks import CHECKS
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris"]
POST_NORM_TYPES = (
    "bert", "bert-generation", "roberta", "xlm-roberta", "camembert", "data2vec-text", "electra", "ernie",
    "rembert", "roc_bert", "roformer", "big_bird",
)
#: The two checks that read the token embedding as hidden_size wide; a factorized one is narrower.
EMBEDDING_WIDTH_CHECKS = ("accessor_shapes", "sizes")
#: model type -> (config key of the embedding width, path of the projection into the residual stream).
FACTORIZED = {
    "electra": ("embedding_size", "electra.embeddings_project"),
    "rembert": ("input_embedding_size", "rembert.encoder.embedding_hidden_mapping_in"),
    "roformer": ("embedding_size", "roformer.embeddings_project"),
}


def _read(model: StandardizedTransformer, layer: int) -> dict[str, torch.Tensor]:
    saved: dict[str, torch.Tensor] = {}
    with torch.no_grad(), model.trace(PROMPTS):
        for name in ("layers_input", "attentions_input", "attentions_output", "mlps_input", "mlps_output",
                     "layers_output"):
            saved[name] = getattr(model, name)[layer].save()
    return saved


@pytest.mark.parametrize("model_type", POST_NORM_TYPES)
def test_post_norm_spans_are_what_each_layernorm_adds_to_the_stream(model_type):
    """mlps_input = LN(layers_input + attentions_output); layers_output = LN'(mlps_input + mlps_output)."""
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    for layer in range(model.num_layers):
        saved = _read(model, layer)
        block = model.layers[layer]._module
        with torch.no_grad():
            after_attention = block.attention.output.LayerNorm(saved["attentions_output"] + saved["layers_input"])
            after_mlp = block.output.LayerNorm(saved["mlps_output"] + saved["mlps_input"])
        assert torch.equal(saved["attentions_input"], saved["layers_input"])
        assert torch.equal(saved["mlps_input"], after_attention)
        assert torch.equal(saved["layers_output"], after_mlp)
        assert not torch.equal(saved["attentions_output"], saved["mlps_input"])


def test_xmod_language_adapter_runs_between_the_mlp_and_the_layer_norm():
    """X-MOD adds mlps_output to the stream, then runs the default language's adapter, then the norm."""
    hf, tokenizer = build_tiny("xmod")
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    saved = _read(model, 0)
    output = model.layers[0]._module.output
    with torch.no_grad():
        normed = output.LayerNorm(saved["mlps_output"] + saved["mlps_input"])
        adapted = output.LayerNorm(output.adapter_modules["en_XX"](normed) + normed)
        other_language = output.LayerNorm(output.adapter_modules["de_DE"](normed) + normed)
    assert torch.equal(saved["layers_output"], adapted)
    assert not torch.equal(saved["layers_output"], normed)
    assert not torch.equal(saved["layers_output"], other_language)


@pytest.mark.parametrize("model_type", tuple(FACTORIZED))
def test_factorized_embeddings_are_served_narrow_and_projected_before_layer_zero(model_type):
    """token_embeddings is the 16-wide embedding; layer 0 reads its projection into the 32-wide stream.

    Every conformance check but the two that take the embedding to be hidden_size wide passes.
    """
    width_key, projection = FACTORIZED[model_type]
    hf, tokenizer = build_tiny(model_type, overrides={width_key: 16})
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    with torch.no_grad(), model.trace(PROMPTS):
        embeddings = model.token_embeddings.save()
        projected = model.get(projection).output.save()
        first_input = model.layers_input[0].save()
    assert embeddings.shape[-1] == 16 and first_input.shape[-1] == model.hidden_size == 32
    assert torch.equal(first_input, projected)
    report = nnrosetta_conformance.run(model, [name for name in CHECKS if name not in EMBEDDING_WIDTH_CHECKS])
    assert [(r.name, r.message) for r in report.results if r.status not in ("passed", "skipped", "xfailed")] == []


def test_a_bidirectional_config_is_refused_and_loads_with_is_decoder(tmp_path):
    """A BERT checkpoint saved with is_decoder=False is refused with how to load it causally."""
    folder = save_tiny("bert", tmp_path / "bert", overrides={"is_decoder": False})
    with pytest.raises(UnsupportedArchitectureError, match=r"is_decoder is False.*is_decoder=True"):
        StandardizedTransformer(str(folder))
    config = AutoConfig.from_pretrained(folder, is_decoder=True)
    model = StandardizedTransformer(str(folder), config=config)
    assert model.config.is_decoder is True


@pytest.mark.parametrize(
    ("model_type", "overrides", "reason"),
    [
        ("big_bird", {"attention_type": "block_sparse"}, r"block-sparse attention is bidirectional"),
        ("xmod", {"pre_norm": True}, r"pre_norm=True"),
    ],
)
def test_configs_taking_an_unserved_path_are_refused(model_type, overrides, reason):
    hf, tokenizer = build_tiny(model_type, overrides=overrides)
    with pytest.raises(UnsupportedArchitectureError, match=reason):
        StandardizedTransformer(hf, tokenizer=tokenizer)


#: Tiny configs of the refused types (they ship none: no tiny model of them is built by the suite).
REFUSED_CONFIGS = {
    "xlm": {"emb_dim": 32, "n_layers": 1, "n_heads": 4, "causal": True},
    "xlnet": {"d_model": 32, "n_layer": 1, "n_head": 4, "d_inner": 64},
    "reformer": {"hidden_size": 32, "num_attention_heads": 2, "attention_head_size": 16, "feed_forward_size": 64,
                 "attn_layers": ["local"], "axial_pos_embds": False, "is_decoder": True},
    "cpmant": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "dim_head": 8, "dim_ff": 64,
               "prompt_length": 2},
}


@pytest.mark.parametrize("model_type", tuple(REFUSED))
def test_refused_types_name_their_reason_at_load(model_type):
    config = AutoConfig.for_model(model_type, vocab_size=384, **REFUSED_CONFIGS[model_type])
    hf = AutoModelForCausalLM.from_config(config)
    with pytest.raises(UnsupportedArchitectureError) as raised:
        StandardizedTransformer(hf, tokenizer=build_tokenizer())
    assert REFUSED[model_type].unsupported in str(raised.value)
