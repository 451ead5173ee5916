"""Seq2seq-decoder choices the generic suite cannot see: post-norm sublayers, the unused cross-attention,
and ProphetNet's refusal.

The suite skips the residual sum for post-norm layers, so the first test ties each
sublayer to the LayerNorm the layer adds it to. An MLP span ending at
`final_layer_norm`, or a layer whose cross-attention ran between the two sublayers,
would pass every generic check and fail here.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError
from nnrosetta.tiny import build_tokenizer
from nnrosetta_bart import BART
from nnrosetta_conformance.tiny import build_tiny

PROMPTS = ["The cat sat on the mat and the dog slept by the door", "Paris"]
POST_NORM_TYPES = ("bart", "marian", "blenderbot-small", "plbart", "mvp", "trocr")
PRE_NORM_TYPES = ("mbart", "pegasus", "blenderbot", "bigbird_pegasus", "whisper")


def test_every_served_type_is_declared_post_or_pre_norm():
    declared = {t: BART.for_type(t).residual.kind for t in POST_NORM_TYPES + PRE_NORM_TYPES}
    assert declared == {**dict.fromkeys(POST_NORM_TYPES, "post_norm"), **dict.fromkeys(PRE_NORM_TYPES, "sequential")}
    assert set(POST_NORM_TYPES + PRE_NORM_TYPES) == set(BART.served_types())


@pytest.mark.parametrize("model_type", POST_NORM_TYPES)
def test_post_norm_sublayers_are_what_each_layernorm_adds_and_cross_attention_never_runs(model_type):
    """mlps_input = self_attn_layer_norm(layers_input + attentions_output); layers_output =
    final_layer_norm(mlps_input + mlps_output); the cross-attention is not called."""
    hf, tokenizer = build_tiny(model_type)
    model = StandardizedTransformer(hf, tokenizer=tokenizer)
    calls = []
    hooks = [model.layers[i]._module.encoder_attn.register_forward_hook(lambda *_: calls.append(1))
             for i in range(model.num_layers)]
    saved: dict[tuple[str, int], torch.Tensor] = {}
    try:
        with torch.no_grad(), model.trace(PROMPTS):
            for layer in range(model.num_layers):
                for name in ("layers_input", "attentions_input", "attentions_output", "mlps_input", "mlps_output",
                             "layers_output"):
                    saved[(name, layer)] = getattr(model, name)[layer].save()
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == []
    for layer in range(model.num_layers):
        value = lambda name: saved[(name, layer)]  # noqa: E731
        block = model.layers[layer]._module
        with torch.no_grad():
            after_attention = block.self_attn_layer_norm(value("layers_input") + value("attentions_output"))
            after_mlp = block.final_layer_norm(value("mlps_input") + value("mlps_output"))
        assert torch.equal(value("attentions_input"), value("layers_input"))
        assert torch.equal(value("mlps_input"), after_attention)
        assert torch.equal(value("layers_output"), after_mlp)


def test_prophetnet_is_refused_with_its_reason():
    config = AutoConfig.for_model(
        "prophetnet", vocab_size=384, hidden_size=32, num_encoder_layers=1, num_decoder_layers=1,
        num_encoder_attention_heads=4, num_decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, ngram=2,
    )
    hf = AutoModelForCausalLM.from_config(config)
    with pytest.raises(UnsupportedArchitectureError) as raised:
        StandardizedTransformer(hf, tokenizer=build_tokenizer())
    assert BART.for_type("prophetnet").unsupported in str(raised.value)


@pytest.mark.parametrize("model_type", ["bart", "mbart"])
def test_generation_check_reads_the_raw_argmax_when_the_checkpoint_forces_eos(model_type, tmp_path):
    """BART's and mBART's released generation configs force EOS at the last step; the edit must still show."""
    from transformers import GenerationConfig

    from nnrosetta.tiny import build_tokenizer, save_tiny
    from nnrosetta_conformance import runner

    eos = build_tokenizer().eos_token_id
    folder = save_tiny(model_type, tmp_path / model_type, overrides={"forced_eos_token_id": eos})
    assert GenerationConfig.from_pretrained(folder).forced_eos_token_id == eos
    report = runner.run(str(folder), ["generation"])
    assert [(r.name, r.message) for r in report.failures] == []
