"""Workload 4: logit lens over all layers at the last token.

- floor, plain HuggingFace: one forward with ``output_hidden_states`` under
  ``no_grad``, then the final norm and unembedding of every layer in one batched
  call (the last layer's lens is the model's own logits: HF's last hidden state
  is already normed);
- raw nnsight by hand, as the tutorials write it: the projection of each layer
  inside the trace, autograd on;
- ``nnrosetta.interventions.logit_lens``.
All three tokenize the same prompts and return (batch, layers, vocab) probabilities.
Target: nnrosetta at most 1.05x the floor.
"""

from __future__ import annotations

import torch

from ..context import Models, Settings
from ..prompts import prompts
from ..report import Row, missing
from ..timing import TARGET_REPEATS, compare

NAME = "4 logit lens, all layers, last token"
TARGET_VS_FLOOR = 1.05


def plain_hf(models: Models, texts: list[str]) -> torch.Tensor:
    model = models.hf
    input_ids = models.nnrosetta.tokenizer(texts, return_tensors="pt")["input_ids"].to(model.device)
    with torch.no_grad():
        output = model(input_ids, output_hidden_states=True)
        hidden = torch.stack([h[:, -1] for h in output.hidden_states[1:-1]], dim=1)
        final_norm, unembed = models.native(model, "ln_final"), models.native(model, "lm_head")
        logits = torch.cat([unembed(final_norm(hidden)), output.logits[:, -1:]], dim=1)
        return logits.softmax(dim=-1)


def raw_nnsight(models: Models, texts: list[str]) -> torch.Tensor:
    model = models.nnsight
    layers = models.native(model, "layers")
    final_norm, unembed = models.native(model, "ln_final"), models.native(model, "lm_head")
    probs: list = []
    with model.trace(texts):
        for layer in layers:
            probs.append(unembed(final_norm(layer.output[:, -1])).softmax(dim=-1).save())
    return torch.stack(probs, dim=1)


def run(models: Models, settings: Settings) -> list[Row]:
    name = models.shape.name
    try:
        from nnrosetta.interventions import logit_lens
    except ImportError as error:
        return [missing(NAME, name, "nnrosetta.interventions.logit_lens", f"not importable ({error})")]
    texts = prompts(settings.batch, settings.seq, seed=1)
    ours = lambda: logit_lens(models.nnrosetta, texts)  # noqa: E731
    floor, by_hand, result = plain_hf(models, texts), raw_nnsight(models, texts), ours()
    agree = max((result - floor).abs().max().item(), (by_hand.detach() - floor).abs().max().item())
    timings = compare(
        {"hf": lambda: plain_hf(models, texts), "raw": lambda: raw_nnsight(models, texts), "ours": ours},
        max(settings.repeats, TARGET_REPEATS),
        settings.warmup,
        settings.device,
    )
    shape = f"batch {settings.batch} × {settings.seq} tokens"
    return [
        Row(NAME, name, "plain HF: hidden states, one batched projection (floor)", timings.median("hf"),
            note=shape),
        Row(NAME, name, "raw nnsight by hand: project per layer in the trace", timings.median("raw"),
            reference="vs floor", ratio=timings.ratio("raw", "hf")),
        Row(NAME, name, "nnrosetta.interventions.logit_lens", timings.median("ours"),
            reference="vs floor", ratio=timings.ratio("ours", "hf"), target=models.target(TARGET_VS_FLOOR),
            note=f"{timings.ratio('ours', 'raw'):.3f}× vs by hand; max |Δprob| vs floor {agree:.1e}"),
    ]
