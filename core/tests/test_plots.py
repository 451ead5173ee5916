"""Logit-lens and patching heatmaps as HTML and PNG files, and the `nnrosetta lens` command."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from interventions_support import count_forwards, tiny_model

from nnrosetta import InvalidInputError, MissingDependencyError, ShapeError
from nnrosetta.cli import main
from nnrosetta.display import Heatmap, logit_lens_heatmap, patching_heatmap
from nnrosetta.display.extras import require
from nnrosetta.display.heatmap import token_label
from nnrosetta.interventions import logit_lens

PROMPT = "The capital of France is"

pytest.importorskip("plotly", reason="the display extra (from a clone: pip install './[display]') is not installed")
pytest.importorskip("matplotlib", reason="the display extra (from a clone: pip install './[display]') is not installed")


def written(text: str, html: str) -> bool:
    """Whether ``text`` appears in the HTML as plotly writes strings (raw or JSON-escaped)."""
    forms = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    return any(form in html for form in forms)


def pixels(path) -> torch.Tensor:
    from matplotlib.image import imread

    return torch.as_tensor(imread(str(path)))


@pytest.fixture(scope="module")
def lens_heatmap() -> Heatmap:
    return logit_lens_heatmap(tiny_model("llama"), PROMPT)


def test_lens_heatmap_cells_are_the_top_tokens(lens_heatmap):
    model = tiny_model("llama")
    probs = logit_lens(model, [PROMPT], positions=None)[0]  # (layers, positions, vocab)
    top_probs, top_ids = probs.max(-1)
    tokens = model.tokenizer(PROMPT)["input_ids"]
    assert lens_heatmap.row_labels == ("layer 0", "layer 1")
    assert lens_heatmap.column_labels == tuple(token_label(model.tokenizer.decode([t])) for t in tokens)
    assert lens_heatmap.column_labels[:2] == ("The", "·capital")
    assert torch.equal(lens_heatmap.values, top_probs)
    from nnrosetta.display.lens import token_text

    assert lens_heatmap.cell_text == tuple(
        tuple(token_label(token_text(model.tokenizer, i)) for i in row) for row in top_ids.tolist()
    )


def test_html_is_self_contained_and_names_layers_and_tokens(lens_heatmap, tmp_path):
    path = lens_heatmap.save(tmp_path / "lens.html")
    html = path.read_text(encoding="utf-8")
    assert "<script src=\"http" not in html and "Plotly.newPlot" in html  # plotly.js inlined
    for label in lens_heatmap.row_labels + lens_heatmap.column_labels:
        assert written(label, html), label
    for row in lens_heatmap.cell_text:
        for text in row:
            assert written(text, html), text


def test_png_is_not_blank(lens_heatmap, tmp_path):
    image = pixels(lens_heatmap.save(tmp_path / "lens.png"))
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert float(image[..., :3].float().var()) > 0.01  # not one flat colour


def test_patching_heatmap_is_diverging(tmp_path):
    effects = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.25, -0.125]])
    heatmap = patching_heatmap(effects, [0, 1], ["The", " cat", "\n"])
    assert heatmap.diverging and heatmap.column_labels == ("The", "·cat", "\\n")
    assert heatmap.cell_text == (("0.50", "-1.00", "0.00"), ("2.00", "0.25", "-0.12"))
    html = heatmap.save(tmp_path / "effects.html").read_text(encoding="utf-8")
    assert all(written(text, html) for row in heatmap.cell_text for text in row)
    assert '"zmin":-2.0' in html.replace(" ", "") and '"zmax":2.0' in html.replace(" ", "")
    assert float(pixels(heatmap.save(tmp_path / "effects.png"))[..., :3].var()) > 0.01


def test_heatmap_refuses_mismatched_labels_and_unknown_suffix(lens_heatmap, tmp_path):
    with pytest.raises(ShapeError, match="2 row labels"):
        Heatmap(torch.zeros(3, 2), ("a", "b"), ("x", "y"))
    with pytest.raises(InvalidInputError, match=".html or .png"):
        lens_heatmap.save(tmp_path / "lens.svg")
    with pytest.raises(MissingDependencyError, match=r"pip install '\./\[display\]'"):
        require("a_module_that_is_not_installed")


def test_cli_lens_writes_a_heatmap_offline(tmp_path, capsys):
    out = tmp_path / "lens.html"
    assert main(["lens", PROMPT, "--model", "tiny:gpt2", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert written("layer 0", html) and written("layer 1", html) and written("·capital", html)
    assert "2 layers x 8 tokens" in capsys.readouterr().out


def test_cli_lens_bad_arguments_exit_2_before_loading(tmp_path, capsys):
    model = tiny_model("llama")
    with count_forwards(model) as forwards:
        assert main(["lens", PROMPT, "--model", "tiny:llama", "--out", str(tmp_path / "lens.txt")]) == 2
        assert main(["lens", PROMPT, "--model", "tiny:llama", "--out", str(tmp_path / "no" / "lens.html")]) == 2
    assert forwards == []
    assert "must end in .html or .png" in capsys.readouterr().err


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed by the test set-up")
def test_html_renders_in_headless_chromium(lens_heatmap, tmp_path):
    page = lens_heatmap.save(tmp_path / "lens.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={shot}",
         "--window-size=900,500", "--virtual-time-budget=5000", page.as_uri()],
        check=True, capture_output=True, timeout=60,
    )
    assert float(pixels(shot)[..., :3].var()) > 0.001
