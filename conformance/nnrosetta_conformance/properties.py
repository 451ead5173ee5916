"""Property-based conformance runs: the whole suite on hypothesis-drawn tiny configs.

For one (adapter, model type) a tiny config is drawn (1-4 layers, query heads and
key/value heads that divide them, head size, vocabulary) with a probe batch (1-3
rows, up to 12 tokens, left-padded to different lengths); the model is built with
seeded random weights and every check must pass. A failure prints the drawn config
and probe as drawn (shrinking is off: each step builds a model; set
``NNROSETTA_HYPOTHESIS_SHRINK=1`` for a minimal example). Third-party adapters get
this through ``ConformanceSuite.property_examples``.
"""

from __future__ import annotations

import os

from hypothesis import Phase, given, note, reject, settings
from hypothesis import strategies as st

from nnrosetta.adapter import Adapter
from nnrosetta.errors import RefusedConfigError
from nnrosetta.model import StandardizedTransformer
from nnrosetta.registry import default_registry
from nnrosetta.tiny import SPECIAL_TOKENS, TOKENIZER_VOCAB_SIZE, build_tiny

from .checks import Probe
from .runner import run, single_threaded

PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + (
    [Phase.shrink] if os.environ.get("NNROSETTA_HYPOTHESIS_SHRINK") == "1" else []
)


@st.composite
def tiny_sizes(draw: st.DrawFn, adapter: Adapter) -> dict[str, int]:
    """Config overrides for the adapter's size keys: layers, heads dividing, head size, vocab."""
    keys = adapter.config_keys
    heads = draw(st.sampled_from([1, 2, 3, 4, 6]))
    head_dim = draw(st.sampled_from([4, 8, 16]))
    sizes = {
        keys.num_layers: draw(st.integers(1, 4)),
        keys.num_heads: heads,
        keys.hidden_size: heads * head_dim,
        keys.vocab_size: draw(st.integers(TOKENIZER_VOCAB_SIZE, TOKENIZER_VOCAB_SIZE + 128)),
    }
    if keys.num_kv_heads:
        sizes[keys.num_kv_heads] = draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0]))
    if keys.head_dim:
        sizes[keys.head_dim] = head_dim
    return sizes


@st.composite
def probe_rows(draw: st.DrawFn) -> list[list[int]]:
    """1-3 rows of ordinary token ids, 1-12 long; the longest sets the padded width."""
    token = st.integers(len(SPECIAL_TOKENS), TOKENIZER_VOCAB_SIZE - 1)
    width = draw(st.integers(1, 12))
    rows = draw(st.lists(st.lists(token, min_size=1, max_size=width), min_size=1, max_size=3))
    rows[draw(st.integers(0, len(rows) - 1))] += draw(st.lists(token, min_size=width, max_size=width))
    return [row[-width:] for row in rows]


def fitted_overrides(tiny: dict, sizes: dict[str, int], layers_key: str) -> dict:
    """The drawn sizes as overrides of a tiny config, following two HuggingFace conventions:
    a per-layer ``layer_types`` list is cycled to the drawn layer count, and image-text
    configs keep the decoder's sizes in their ``text_config`` (the vocabulary size is
    also kept at the top, as `tiny_config` writes it there)."""
    if "text_config" in tiny:
        text = tiny["text_config"]
        vocab = {key: value for key, value in sizes.items() if key == "vocab_size"}
        return {"text_config": {**text, **fitted_overrides(text, sizes, layers_key)}, **vocab}
    fitted = dict(sizes)
    if tiny.get("layer_types"):
        pattern = list(tiny["layer_types"])
        fitted["layer_types"] = [pattern[i % len(pattern)] for i in range(sizes[layers_key])]
    return fitted


def check_drawn_configs(adapter_name: str, model_type: str, examples: int = 3) -> None:
    """Run the whole suite on ``examples`` drawn tiny configs of ``model_type``; fail with the config drawn."""
    adapter = default_registry().adapter(adapter_name).for_type(model_type)

    @settings(max_examples=examples, phases=PHASES, deadline=None, database=None, print_blob=True)
    @given(data=st.data())
    def drawn(data: st.DataObject) -> None:
        sizes = data.draw(tiny_sizes(adapter), label="config overrides")
        rows = data.draw(probe_rows(), label="probe rows")
        note(f"{model_type} ({adapter_name}) with config overrides {sizes} and probe rows {rows}")
        overrides = fitted_overrides(dict(adapter.tiny_config), sizes, adapter.config_keys.num_layers)
        with single_threaded():
            model, tokenizer = build_tiny(model_type, adapter=adapter, overrides=overrides)
            try:
                standardized = StandardizedTransformer(model, tokenizer=tokenizer, adapter=adapter, check=False)
            except RefusedConfigError as refused:  # a config the adapter refuses is no failure
                note(f"refused: {refused}")
                reject()
            report = run(standardized, probe=Probe.from_rows(rows, tokenizer.pad_token_id))
        failures = "; ".join(f"{r.name} ({r.status}): {r.message}" for r in report.failures)
        assert report.ok, f"{model_type} with config overrides {sizes} and probe rows {rows} fails: {failures}"

    drawn()
