"""Each claimed type is refused at load, and the error says why, naming the structure that does not fit."""

from __future__ import annotations

import pytest

from nnrosetta import StandardizedTransformer, UnsupportedArchitectureError, default_registry
from nnrosetta_refused_hybrids import REASONS

#: A word each reason must contain: the structure of the model that rules the interface out.
STRUCTURE = {
    "dory": "n_recurrent_loops",
    "hrm_text": "H_module",
    "inkling2_text": "block_states",
    "inkling2_loop_text": "block attention residuals",
    "gemma3n_text": "AltUp",
    "qwen4_exp_text": "hyper_connection_mixer",
    "qwen4_exp": "hyper_connection_mixer",
}


@pytest.mark.parametrize("model_type", sorted(REASONS))
def test_the_type_is_refused_at_load_with_its_reason(model_type, tmp_path):
    from transformers import AutoConfig

    adapter = default_registry().resolve(model_type)
    assert adapter.name == "refused_hybrids" and adapter.for_type(model_type).unsupported == REASONS[model_type]
    with pytest.raises(UnsupportedArchitectureError, match=STRUCTURE[model_type]):
        # A folder with the type's config: refused before any weight is read.
        AutoConfig.for_model(model_type).save_pretrained(tmp_path)
        StandardizedTransformer(str(tmp_path))
