"""nnrosetta plugin for BERT-style encoders that transformers ships with a causal-LM head.

One family declaration (`BERT`) covers every type whose layers are BERT's
``<prefix>.encoder.layer[i]`` with ``attention.self`` + ``attention.output`` and
``intermediate`` + ``output``; each type's `Variant` says only what differs (the
prefix, the head, a pre-norm layout). `MODERNBERT_DECODER` serves the ModernBERT
decoder, whose tree is a pre-norm decoder's. The types whose layers cannot carry
the standard names are claimed only to be refused with the reason.

What the standard names mean here (the README has the table):

- ``self_attn`` is a span: the input of ``attention.self`` (what attention reads)
  to the output of ``attention.output.dense`` (what it adds to the residual stream,
  before the LayerNorm that ends the sublayer in post-norm types).
- ``mlp`` is a span: the input of ``intermediate`` to the output of ``output.dense``.
- Post-norm types have no final norm (each layer ends in its own LayerNorm):
  ``ln_final`` is absent. Pre-norm types (roberta-prelayernorm, xlm-roberta-xl,
  megatron-bert) normalise the last layer's output once: that norm is ``ln_final``.
- ``lm_head`` is the prediction head module the model's forward calls on the last
  hidden state (transform and vocabulary projection together, so ``lm_head(h)``
  is the logits; its ``.decoder`` is the vocabulary projection). nnsight cannot
  alias a standard name over a native ``lm_head`` child, which RoBERTa-style heads
  are, so the whole head is the one meaning every type can have.

Attention probabilities and heads are read inside ``attention.self`` (the specs' ``module``)
by transformers' conventions, except on the types that write their attention by hand
(`HAND_WRITTEN_ATTENTION`), which declare neither. nnsight moves a
child module named like one of its own attributes (``output``) to ``E_output``; span
paths are written in that spelling. Tiny configs keep the embeddings as wide as the
residual stream; the factorized layouts (narrower embeddings projected in) are tested
by the family tests.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nnrosetta import Adapter, Assigned, AttentionSpec, Called, ConfigKeys, HeadsSpec, Residual, Span, Variant, conventions, hookimpl

from .limits import needs_decoder, needs_full_attention, needs_post_norm_xmod
from .modernbert import MODERNBERT_DECODER
from .projections import electra_generator_head
from .unsupported import REFUSED

NNROSETTA_CONTRACT = 2

#: nnsight's name for a child module called ``output`` (its own ``.output`` is the module's value).
OUTPUT = "E_output"

SERVED_TYPES = (
    "bert",
    "bert-generation",
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "data2vec-text",
    "electra",
    "ernie",
    "megatron-bert",
    "rembert",
    "roc_bert",
    "roformer",
    "xmod",
    "big_bird",
    "git",
)
MODEL_TYPES = SERVED_TYPES + tuple(REFUSED)


def tree(prefix: str, head: str, final_norm: Optional[str] = None) -> dict[str, Optional[str]]:
    """The root rename entries of a BERT-style causal LM whose encoder sits at ``prefix``."""
    rename: dict[str, Optional[str]] = {
        f"{prefix}.embeddings.word_embeddings": "embed_tokens",
        f"{prefix}.encoder.layer": "layers",
        head: "lm_head",
    }
    if final_norm is not None:
        rename[final_norm] = "ln_final"
    return rename


FAMILY_TREE = tree("bert", "cls.predictions")


def retarget(prefix: str, head: str, final_norm: Optional[str] = None) -> dict[str, Optional[str]]:
    """A variant's rename: the family's root entries removed, this type's added."""
    return {**{path: None for path in FAMILY_TREE}, **tree(prefix, head, final_norm)}


#: Post-norm BERT layers: attention reads the layer input; its output projection is what is added.
ATTENTION_SPAN = Span("attention.self", f"attention.{OUTPUT}.dense")
MLP_SPAN = Span("intermediate", f"{OUTPUT}.dense")
NO_FINAL_NORM = (
    "post-norm layers: each layer ends in its own LayerNorm and the last layer's output goes "
    "straight into the prediction head, so there is no final norm"
)

#: is_decoder=True is what makes HuggingFace's BERT-style layers causal. Weights drawn 10x wider than
#: the default (0.02) so the head's vocabulary projection, not its (perturbed) bias, decides the logits.
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "is_decoder": True,
    "initializer_range": 0.2,
}


def post_norm(prefix: str, head: str, **changes) -> Variant:
    """A post-norm type: no final norm; its encoder at ``prefix``, its prediction head at ``head``."""
    return Variant(rename=retarget(prefix, head), absent={"ln_final": NO_FINAL_NORM}, **changes)


def pre_norm(prefix: str, head: str, final_norm: str, mlp_start: str, notes: str, **changes) -> Variant:
    """A pre-norm type: each sublayer normalises its input and adds its output as is; one final norm.

    ``mlp_start`` is the module whose input the MLP reads after its norm.
    """
    return Variant(
        rename=retarget(prefix, head, final_norm),
        spans={"mlp": Span(mlp_start, f"{OUTPUT}.dense")},
        residual=Residual(),
        notes=notes,
        **changes,
    )


VARIANTS = {
    "bert": post_norm("bert", "cls.predictions"),
    "bert-generation": post_norm("bert", "lm_head", notes="head: lm_head, the vocabulary projection alone"),
    "roberta": post_norm("roberta", "lm_head", positions_from_inputs=True),
    "roberta-prelayernorm": pre_norm(
        "roberta_prelayernorm", "lm_head", "roberta_prelayernorm.LayerNorm", "intermediate.dense",
        notes="pre-norm: attention.LayerNorm, intermediate.LayerNorm; final roberta_prelayernorm.LayerNorm",
        positions_from_inputs=True,
    ),
    "xlm-roberta": post_norm("roberta", "lm_head", positions_from_inputs=True),
    "xlm-roberta-xl": pre_norm(
        "roberta", "lm_head", "roberta.encoder.LayerNorm", "intermediate",
        notes="pre-norm: attention.self_attn_layer_norm, layer LayerNorm; final roberta.encoder.LayerNorm",
        positions_from_inputs=True,
    ),
    "camembert": post_norm("roberta", "lm_head", positions_from_inputs=True),
    "data2vec-text": post_norm("data2vec_text", "lm_head", positions_from_inputs=True),
    "electra": post_norm(
        "electra", "generator_lm_head",
        final_projection=electra_generator_head,
        tiny_config={"embedding_size": 32},
        notes="head split in two: generator_predictions (transform), then generator_lm_head (lm_head)",
    ),
    "ernie": post_norm("ernie", "cls.predictions"),
    "megatron-bert": pre_norm(
        "bert", "cls.predictions", "bert.encoder.ln", "intermediate",
        notes="pre-norm: attention.ln, layer ln; final bert.encoder.ln",
    ),
    "rembert": post_norm(
        "rembert", "cls.predictions",
        tiny_config={"input_embedding_size": 32, "output_embedding_size": 32},
    ),
    "roc_bert": post_norm(
        "roc_bert", "cls.predictions",
        tiny_config={"shape_vocab_size": 16, "shape_embed_dim": 8, "pronunciation_vocab_size": 16,
                     "pronunciation_embed_dim": 8},
    ),
    "roformer": post_norm(
        "roformer", "cls.predictions",
        tiny_config={"embedding_size": 32},
    ),
    "xmod": post_norm(
        "roberta", "lm_head",
        tiny_config={"languages": ["en_XX", "de_DE"], "default_language": "en_XX"},
        refuse=needs_post_norm_xmod,
        positions_from_inputs=True,
        notes="after mlps_output, each layer runs a per-language adapter (output.adapter_modules) before its norm",
    ),
    "big_bird": post_norm(
        "bert", "cls.predictions", tiny_config={"attention_type": "original_full"}, refuse=needs_full_attention,
    ),
    "git": post_norm(
        "git", "E_output",
        # GIT writes its attention by hand: the softmax's dropout (the identity in eval mode) is the
        # probabilities; per-head query/key/value layers are the projections' first assignments (the
        # cache update reassigns keys and values with the cached positions).
        attention=AttentionSpec(probabilities=Called("self.dropout"), module="attention.self"),
        heads=HeadsSpec(
            output_projection=f"attention.{OUTPUT}.dense",
            queries=Assigned("query_layer"),
            keys=Assigned("key_layer", occurrence=0),
            values=Assigned("value_layer", occurrence=0),
            module="attention.self",
        ),
        # The image encoder shrunk only so the model is cheap to build; text-only inputs never run it.
        tiny_config={"vision_config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                       "num_attention_heads": 2, "image_size": 32, "patch_size": 16}},
        refuse=None,
        notes="image-text model, text path: GIT's text decoder (post-norm BERT layers at git.encoder.layer, "
        "causal over text tokens whatever is_decoder says); lm_head is GitForCausalLM.output; layer 0 reads "
        "LayerNorm(token_embeddings + position embeddings); images go through HuggingFace unchanged",
    ),
    **REFUSED,
}

#: The attention forward with the points is ``attention.self`` (the start of the span): its eager
#: probabilities and per-head query/key/value layers, by transformers' conventions; the head
#: outputs are what ``attention.output.dense`` reads.
ATTENTION = AttentionSpec(probabilities=conventions.ATTENTION.probabilities, module="attention.self")
HEADS = HeadsSpec(
    output_projection=f"attention.{OUTPUT}.dense",
    attention_call=conventions.ATTENTION_CALL,
    queries=Assigned("query_layer", before=conventions.ATTENTION_CALL),
    keys=Assigned("key_layer", before=conventions.ATTENTION_CALL),
    values=Assigned("value_layer", before=conventions.ATTENTION_CALL),
    module="attention.self",
)

#: Types whose self-attention is written by hand in the forward (no attention-interface call);
#: their probabilities and heads are not declared.
HAND_WRITTEN_ATTENTION = ("megatron-bert", "rembert", "roformer", "big_bird")
HAND_WRITTEN_NOTE = (
    "attention computed by hand in the forward (no attention-interface call): probabilities and heads "
    "are not declared"
)
for _type in HAND_WRITTEN_ATTENTION:
    _variant = VARIANTS[_type]
    VARIANTS[_type] = dataclasses.replace(
        _variant, attention=None, heads=None, notes="; ".join(filter(None, (_variant.notes, HAND_WRITTEN_NOTE)))
    )

BERT = Adapter(
    name="bert",
    model_types=MODEL_TYPES,
    rename=FAMILY_TREE,
    config_keys=ConfigKeys(num_kv_heads=None, head_dim=None),
    spans={"self_attn": ATTENTION_SPAN, "mlp": MLP_SPAN},
    attention=ATTENTION,
    heads=HEADS,
    residual=Residual(kind="post_norm"),
    tiny_config=TINY,
    variants=VARIANTS,
    refuse=needs_decoder,
    description="BERT-style encoders used as causal LMs: <prefix>.encoder.layer[i], spans for attention and MLP.",
)


@hookimpl
def register_adapters(register) -> None:
    register(BERT)
    register(MODERNBERT_DECODER)
