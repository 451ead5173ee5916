"""Run conformance checks on a model and collect a `Report`.

The same functions serve the library (`run`), the ``nnrosetta check`` command and
the pytest plugin, so all three report the same statuses for the same model.
A target is a loaded `StandardizedTransformer`, a HuggingFace model object, a
local folder, a hub id, or ``tiny:<model_type>`` (a seeded random-weight model of
that type, saved to a temporary folder and loaded back by path).
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import torch

from nnrosetta.adapter import Adapter
from nnrosetta.errors import NnrosettaError, RefusedConfigError, UnsupportedArchitectureError
from nnrosetta.model import StandardizedTransformer
from nnrosetta.registry import Registry, default_registry

from .checks import (
    BEFORE_SUITE,
    CHECKS,
    Check,
    CheckFailure,
    CheckSkipped,
    Probe,
    SuiteContext,
    ordered_checks,
    suite_context,
)
from .report import FAILED, PASSED, SKIPPED, XFAILED, XPASSED, CheckResult, Report, SuiteRun, versions
from nnrosetta.tiny import save_tiny

TINY_PREFIX = "tiny:"
ResultCallback = Callable[[CheckResult], None]

#: The quick profile, for models too large to run everything on: the checks it leaves out, and why.
#: Each of these costs many forwards' worth of compute or memory; every other check runs.
QUICK_LEAVES_OUT = {
    "write_effect": "one forward of 3 x num_layers + 1 probe copies (each edit of each layer alone)",
    "sublayer_locality": "one forward of 3 x num_layers + 1 copies of the longest prompt",
    "gradients": "a backward pass through the whole model (every layer's activations and gradients held)",
    "generation": "four greedy generations of 3 tokens (a KV cache per run)",
}


class UnknownCheckError(NnrosettaError, KeyError):
    """A check name was asked for that no installed check module registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def select_checks(names: Optional[Iterable[str]] = None, quick: bool = False) -> list[Check]:
    """The checks to run, in run order; every registered one when ``names`` is None.

    ``quick`` drops the checks in `QUICK_LEAVES_OUT` (named ones included).
    """
    if names is None:
        return [c for c in ordered_checks() if not (quick and c.name in QUICK_LEAVES_OUT)]
    wanted = [name.strip() for name in names if name.strip()]
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        raise UnknownCheckError(
            f"unknown conformance check(s): {', '.join(unknown)}. Known checks: {', '.join(CHECKS)}. "
            f"Pass names from that list, comma-separated (--checks fidelity,gradients)."
        )
    if not wanted:
        raise UnknownCheckError(f"no check was named; pass one or more of: {', '.join(CHECKS)}.")
    return [c for c in ordered_checks() if c.name in wanted and not (quick and c.name in QUICK_LEAVES_OUT)]


# -- one check -------------------------------------------------------------------


def run_check(model: StandardizedTransformer, check: Check, blocked_by: Optional[str] = None) -> CheckResult:
    """Run one check and map what happened to a status, honouring capabilities and known_broken."""
    adapter = model.adapter
    started = time.perf_counter()
    missing = sorted(capability.value for capability in check.requires - adapter.capabilities)
    if missing:
        return CheckResult(
            check.name,
            SKIPPED,
            f"adapter {adapter.name!r} does not claim capability {', '.join(missing)}; "
            + " ".join(capability.doc for capability in check.requires - adapter.capabilities),
        )
    refused = _refused_capability(model, check)
    if refused is not None:
        return CheckResult(check.name, SKIPPED, refused)
    broken = adapter.known_broken.get(check.name)
    try:
        if blocked_by is not None:
            raise CheckFailure(f"not run: the `{blocked_by}` check failed, so this one cannot run meaningfully")
        check.function(model)
    except CheckSkipped as skipped:
        return CheckResult(check.name, SKIPPED, str(skipped), time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - a crashing check is reported, never raised
        message = str(error) if isinstance(error, CheckFailure) else f"raised {type(error).__name__}: {error}"
        seconds = time.perf_counter() - started
        if broken is not None:
            return CheckResult(check.name, XFAILED, f"known broken ({broken}): {message}", seconds)
        return CheckResult(check.name, FAILED, message, seconds)
    seconds = time.perf_counter() - started
    if broken is not None:
        return CheckResult(
            check.name,
            XPASSED,
            f"adapter {adapter.name!r} declares this check known broken ({broken}) but it passed; "
            f"remove {check.name!r} from the adapter's known_broken.",
            seconds,
        )
    return CheckResult(check.name, PASSED, "", seconds)


#: The declaration each capability is served from.
CAPABILITY_FIELDS = {"attention_probabilities": "attention", "heads": "heads", "moe": "moe"}


def _refused_capability(model: StandardizedTransformer, check: Check) -> Optional[str]:
    """Why the adapter refuses a capability this check needs for this config (a skip, never a failure)."""
    for capability in sorted(check.requires, key=lambda c: c.value):
        spec = getattr(model.adapter, CAPABILITY_FIELDS.get(capability.value, ""), None)
        refuse = getattr(spec, "refuse", None)
        reason = refuse(model.config) if refuse is not None else None
        if reason:
            return (
                f"adapter {model.adapter.name!r} declares {capability.value} but refuses it for this "
                f"{model.adapter.model_type or '?'!r} config: {reason}"
            )
    return None


class SuiteSession:
    """One target, loaded once, with its suite context: runs checks one at a time.

    The before-suite hooks run when it opens; a failed gate check blocks the ones
    after it. `run` uses it for a whole suite, the pytest plugin for one check per item.
    """

    def __init__(
        self,
        target: Any,
        adapter: Union[Adapter, str, None] = None,
        registry: Optional[Registry] = None,
        probe: Optional[Probe] = None,
        **load_kwargs: Any,
    ) -> None:
        self._stack = contextlib.ExitStack()
        self.model: StandardizedTransformer = self._stack.enter_context(
            open_target(target, adapter, registry, **load_kwargs)
        )
        self.context = SuiteContext(probe=probe)
        self.blocked_by: Optional[str] = None
        with suite_context(self.context):
            for hook in BEFORE_SUITE:
                try:
                    hook(self.model)
                except Exception as error:  # noqa: BLE001 - the check that needs the state reports it
                    self.context.state[f"error:{hook.__name__}"] = f"{type(error).__name__}: {error}"

    def run(self, check: Check) -> CheckResult:
        with suite_context(self.context):
            result = run_check(self.model, check, self.blocked_by)
        if check.gate and result.status in (FAILED, XFAILED):
            self.blocked_by = check.name
        return result

    def close(self) -> None:
        self.context.state.clear()
        self._stack.close()

    def __enter__(self) -> "SuiteSession":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# -- targets ---------------------------------------------------------------------


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the previous count.

    Tiny models are 32 wide: on a busy machine the thread pool's hand-offs cost far
    more than they save (measured on two shared cores: 19.7 s -> 1.6 s for the same
    checks on three tiny types).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _looks_like_path(target: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else with a slash is meant as a folder."""
    return os.path.exists(target) or target.startswith((".", "/", "~")) or target.count("/") > 1 or "\\" in target


@contextlib.contextmanager
def open_target(
    target: Any,
    adapter: Union[Adapter, str, None] = None,
    registry: Optional[Registry] = None,
    **load_kwargs: Any,
) -> Iterator[StandardizedTransformer]:
    """Load a target as a `StandardizedTransformer` (without its load-time check: the suite does it)."""
    registry = registry or default_registry()
    if isinstance(target, StandardizedTransformer):
        yield target
        return
    if isinstance(target, torch.nn.Module):
        yield StandardizedTransformer(target, adapter=adapter, registry=registry, check=False, **load_kwargs)
        return
    if not isinstance(target, (str, os.PathLike)):
        raise NnrosettaError(
            f"cannot check a {type(target).__name__}; pass a StandardizedTransformer, a HuggingFace model, "
            f"a folder, a hub id, or 'tiny:<model_type>'."
        )
    text = str(target)
    if text.startswith(TINY_PREFIX):
        model_type = text[len(TINY_PREFIX) :]
        chosen = tiny_adapter(model_type, adapter, registry)
        with single_threaded(), tempfile.TemporaryDirectory(prefix=f"nnrosetta-tiny-{model_type}-") as folder:
            save_tiny(model_type, folder, adapter=chosen)
            model = StandardizedTransformer(folder, adapter=chosen, registry=registry, check=False, **load_kwargs)
            try:
                yield model
            finally:
                del model
                gc.collect()
        return
    if _looks_like_path(text):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise NnrosettaError(
                f"{text!r} is not a folder. Pass a folder written by save_pretrained, a hub id "
                f"(org/name), or 'tiny:<model_type>'."
            )
        if not (folder / "config.json").is_file():
            raise NnrosettaError(
                f"the folder {text!r} holds no model: there is no config.json in it. Pass a folder "
                f"written by save_pretrained (model and tokenizer), a hub id, or 'tiny:<model_type>'."
            )
    yield StandardizedTransformer(text, adapter=adapter, registry=registry, check=False, **load_kwargs)


def tiny_adapter(model_type: str, adapter: Union[Adapter, str, None], registry: Registry) -> Adapter:
    """The adapter serving ``tiny:<model_type>``: the forced one, else the one claiming the type."""
    if not model_type:
        raise UnsupportedArchitectureError("'tiny:' needs a model type after the colon, e.g. tiny:llama.")
    chosen = registry.resolve(model_type, (), adapter)
    if not chosen.has_tiny(model_type):
        claimed = [t for a in registry.adapters() for t in a.tiny_types()]
        reason = chosen.unsupported or "it ships no tiny config for it (add `tiny_config` to the family or its variant)"
        raise UnsupportedArchitectureError(
            f"adapter {chosen.name!r} ({chosen.plugin}) cannot build 'tiny:{model_type}': {reason}. "
            f"Types with tiny configs: {', '.join(claimed) or 'none'}."
        )
    return chosen


def tiny_targets(registry: Optional[Registry] = None, adapter: Optional[str] = None) -> list[tuple[Adapter, str]]:
    """(adapter, model_type) for every type each installed adapter (or the one named) ships a tiny config for."""
    registry = registry or default_registry()
    adapters = [registry.adapter(adapter)] if adapter else registry.adapters()
    return [(a, t) for a in adapters for t in a.tiny_types()]


# -- whole runs ------------------------------------------------------------------


def run(
    model_or_target: Any,
    checks: Optional[Iterable[str]] = None,
    *,
    adapter: Union[Adapter, str, None] = None,
    probe: Optional[Probe] = None,
    registry: Optional[Registry] = None,
    on_result: Optional[ResultCallback] = None,
    quick: bool = False,
    **load_kwargs: Any,
) -> Report:
    """Run the conformance suite (or the named ``checks``) on a model or target; returns the `Report`.

    ``quick`` leaves out the costliest checks (`QUICK_LEAVES_OUT` says which and why).
    """
    selected = select_checks(checks, quick)
    started = time.perf_counter()
    results: list[CheckResult] = []
    with SuiteSession(model_or_target, adapter, registry, probe, **load_kwargs) as session:
        for check in selected:
            results.append(session.run(check))
            if on_result is not None:
                on_result(results[-1])
        return Report(
            target=_describe(model_or_target),
            model_type=str(getattr(session.model.config, "model_type", "?")),
            adapter=session.model.adapter.name,
            plugin=session.model.adapter.plugin,
            results=results,
            seconds=time.perf_counter() - started,
        )


def run_all_tiny(
    checks: Optional[Iterable[str]] = None,
    *,
    registry: Optional[Registry] = None,
    adapter: Optional[str] = None,
    on_model: Optional[Callable[[str, int], None]] = None,
    on_result: Optional[ResultCallback] = None,
    command: str = "",
) -> SuiteRun:
    """Run the suite on a tiny model of every type every installed adapter (or the one named) claims."""
    registry = registry or default_registry()
    selected = select_checks(checks)
    started = time.perf_counter()
    reports = []
    for served_by, model_type in tiny_targets(registry, adapter):
        if on_model is not None:
            on_model(f"{model_type} ({served_by.name})", len(selected))
        target = f"{TINY_PREFIX}{model_type}"
        model_started = time.perf_counter()
        try:
            report = run(target, [c.name for c in selected], adapter=served_by, registry=registry, on_result=on_result)
        except RefusedConfigError as refused:  # the adapter says why it does not serve this config
            results = [CheckResult(c.name, SKIPPED, f"not run: {refused}") for c in selected]
            for result in results:
                if on_result is not None:
                    on_result(result)
            report = Report(target, model_type, served_by.name, served_by.plugin, results, time.perf_counter() - model_started)
        except Exception as error:  # noqa: BLE001 - one broken type must not hide the others
            message = f"not run: the tiny model failed to build or load: {type(error).__name__}: {error}"
            results = [CheckResult(c.name, FAILED, message) for c in selected]
            for result in results:
                if on_result is not None:
                    on_result(result)
            report = Report(target, model_type, served_by.name, served_by.plugin, results, time.perf_counter() - model_started)
        reports.append(report)
    return SuiteRun(reports, versions(registry), command, time.perf_counter() - started)


def _describe(target: Any) -> str:
    if isinstance(target, (str, os.PathLike)):
        return str(target)
    module = getattr(target, "_module", target)
    return str(getattr(getattr(module, "config", None), "name_or_path", "") or type(module).__name__)
