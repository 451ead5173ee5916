"""Offline tiny models: a seeded random-weight model for any claimed model type.

The model hub is not needed: the config comes from the adapter's tiny config,
the weights from a fixed seed, and the tokenizer is a byte-level BPE trained
here with `tokenizers` on a small embedded corpus. `save_tiny` writes both to a
folder so tests load them by path through the real ``from_pretrained`` code.

Every parameter is random: HuggingFace initialises norms to weight 1 / bias 0
(and some biases and scales to constants), which would make every norm the same
function, so a declaration pointing ``ln_final`` at a layer's own norm would pass.
`build_tiny` perturbs each parameter whose values are all equal.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from .adapter import Adapter
from .errors import UnsupportedArchitectureError
from .registry import Registry, default_registry

#: Standard deviation of the noise added to each constant-initialised parameter.
CONSTANT_PARAMETER_NOISE = 0.2

TOKENIZER_VOCAB_SIZE = 384
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")

CORPUS = (
    "The Eiffel Tower is in Paris. The capital of France is Paris.",
    "The capital of Spain is Madrid. The capital of England is London.",
    "The cat sat on the mat and the dog slept by the door.",
    "One two three four five six seven eight nine ten.",
    "Researchers read hidden states, attention patterns and the outputs of every layer.",
    "A language model predicts the next token from the tokens before it.",
    "I love the sunny days. I hate the cold rain. The weather is nice today.",
    "Water boils at one hundred degrees. Ice melts in the warm sun.",
    "Alice gave Bob a book. Bob gave Alice a pen. Mary went to the store.",
    "le chat, the cat; le chien, the dog; la maison, the house.",
)


@functools.lru_cache(maxsize=1)
def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the embedded corpus (deterministic)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(CORPUS) * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
    )


def adapter_for(model_type: str, registry: Optional[Registry] = None) -> Adapter:
    """The adapter that claims ``model_type`` and ships a tiny config for it."""
    registry = registry or default_registry()
    adapter = registry.resolve(model_type)
    if not adapter.has_tiny(model_type):
        reason = adapter.unsupported or f"it ships no tiny config for it; add `tiny_config` to the family or its variant"
        raise UnsupportedArchitectureError(
            f"adapter {adapter.name!r} ({adapter.plugin}) claims {model_type!r} but no tiny model of it can be "
            f"built: {reason}. Types with tiny configs: {', '.join(claimed_tiny_types(registry)) or 'none'}."
        )
    return adapter


def tiny_config(
    model_type: str,
    adapter: Optional[Adapter] = None,
    overrides: Optional[Mapping[str, Any]] = None,
):
    """The HuggingFace config of the tiny model: adapter's tiny config, tokenizer ids, overrides."""
    adapter = (adapter or adapter_for(model_type)).for_type(model_type)
    tokenizer = build_tokenizer()
    values = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
        **adapter.tiny_config,
        **(overrides or {}),
    }
    return AutoConfig.for_model(model_type, **values)


def build_tiny(
    model_type: str,
    adapter: Optional[Adapter] = None,
    seed: int = 0,
    overrides: Optional[Mapping[str, Any]] = None,
    attn_implementation: Optional[str] = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A seeded random-weight tiny model of ``model_type`` (eval mode, float32) and its tokenizer."""
    config = tiny_config(model_type, adapter, overrides)
    options = {"attn_implementation": attn_implementation} if attn_implementation else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, **options)
        randomize_constant_parameters(model)
    return model.eval(), build_tokenizer()


@torch.no_grad()
def randomize_constant_parameters(model: torch.nn.Module, scale: float = CONSTANT_PARAMETER_NOISE) -> list[str]:
    """Add noise to every parameter whose values are all equal (norms, zero biases); returns their names.

    Uses the global generator, so a seeded build stays deterministic.
    """
    changed = []
    for name, parameter in model.named_parameters():
        flat = parameter.detach().reshape(-1)
        if flat.numel() and parameter.dtype.is_floating_point and bool((flat == flat[0]).all()):
            parameter.add_(torch.randn(parameter.shape, dtype=parameter.dtype) * scale)
            changed.append(name)
    return changed


def save_tiny(
    model_type: str,
    folder: Union[str, Path],
    adapter: Optional[Adapter] = None,
    seed: int = 0,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Build a tiny model and write it with its tokenizer to ``folder``; returns the folder."""
    folder = Path(folder)
    model, tokenizer = build_tiny(model_type, adapter, seed, overrides)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def claimed_tiny_types(registry: Optional[Registry] = None) -> list[str]:
    """Every model type that an installed adapter claims and ships a tiny config for."""
    registry = registry or default_registry()
    return [t for adapter in registry.adapters() for t in adapter.tiny_types()]
