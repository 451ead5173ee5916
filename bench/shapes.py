"""The models benchmarked: random-weight models built from configs, never from the hub.

Each shape is a config; the weights come from a fixed seed, so every run measures
the same model. ``small`` is GPT-2-small sized (the issue's reference shapes),
``large`` a GPU-sized pair, ``tiny`` the conformance models (adapters' tiny configs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from nnrosetta_conformance.tiny import build_tokenizer, tiny_config


GPT2_NATIVE = {"layers": "transformer.h", "ln_final": "transformer.ln_f", "lm_head": "lm_head", "mlp": "mlp"}
LLAMA_NATIVE = {"layers": "model.layers", "ln_final": "model.norm", "lm_head": "lm_head", "mlp": "mlp"}


@dataclass(frozen=True)
class Shape:
    """One benchmarked model: a name for the table, its model type and config values.

    ``native`` names the family's own module paths, which the raw-nnsight baselines
    use as a researcher would write them by hand (no renaming).
    """

    name: str
    model_type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    tiny: bool = False
    native: Mapping[str, str] = field(default_factory=dict)

    def hf_config(self):
        """The HuggingFace config (tiny shapes take the adapter's tiny config and tokenizer ids)."""
        if self.tiny:
            return tiny_config(self.model_type)
        return AutoConfig.for_model(self.model_type, **self.config)

    @property
    def vocab_size(self) -> int:
        return int(self.hf_config().vocab_size)


GPT2_SMALL = Shape(
    "gpt2-small",
    "gpt2",
    {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257},
    native=GPT2_NATIVE,
)
LLAMA_SMALL = Shape(
    "llama-small",
    "llama",
    {
        "num_hidden_layers": 12,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
        "intermediate_size": 2048,
        "vocab_size": 32000,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
    },
    native=LLAMA_NATIVE,
)
# GPU runs: GPT-2-large and a Llama of ~1B parameters (Llama-3.2-1B's shape, 16 layers).
GPT2_LARGE = Shape(
    "gpt2-large",
    "gpt2",
    {"n_layer": 36, "n_embd": 1280, "n_head": 20, "n_positions": 1024, "vocab_size": 50257},
    native=GPT2_NATIVE,
)
LLAMA_LARGE = Shape(
    "llama-1b",
    "llama",
    {
        "num_hidden_layers": 16,
        "hidden_size": 2048,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 8192,
        "vocab_size": 128256,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    },
    native=LLAMA_NATIVE,
)
GPT2_TINY = Shape("gpt2-tiny", "gpt2", tiny=True, native=GPT2_NATIVE)
LLAMA_TINY = Shape("llama-tiny", "llama", tiny=True, native=LLAMA_NATIVE)

SHAPES: dict[str, tuple[Shape, ...]] = {
    "small": (GPT2_SMALL, LLAMA_SMALL),
    "large": (GPT2_LARGE, LLAMA_LARGE),
    "tiny": (GPT2_TINY, LLAMA_TINY),
}


def build_model(shape: Shape, device: str, dtype: torch.dtype, seed: int = 0) -> PreTrainedModel:
    """A seeded random-weight model of ``shape`` in eval mode, on ``device`` in ``dtype``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(shape.hf_config(), dtype=dtype)
    return model.to(device).eval()


def save_model(model: PreTrainedModel, folder: Path) -> Path:
    """Write the model and the conformance tokenizer to ``folder`` (loaded back by path)."""
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def token_batch(shape: Shape, batch: int, seq: int, device: str, seed: int = 0) -> torch.Tensor:
    """A fixed (batch, seq) tensor of token ids (no padding: every position is real)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, shape.vocab_size, (batch, seq), generator=generator).to(device)
