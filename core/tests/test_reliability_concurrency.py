"""Concurrent traces of one model are serialised by the model, and give what each thread gets alone."""

from __future__ import annotations

import threading

import pytest
import torch

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import build_tiny

THREADS = 4
TRACES_PER_THREAD = 6


def build(model_type: str) -> StandardizedTransformer:
    model, tokenizer = build_tiny(model_type)
    return StandardizedTransformer(model, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def models() -> dict[str, StandardizedTransformer]:
    return {"llama": build("llama"), "gpt2": build("gpt2")}


def prompts_of(worker: int) -> list[str]:
    return [f"thread {worker} asks about the number {worker * 7}", "Hi"]


def intervened_run(model: StandardizedTransformer, worker: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A trace that reads, writes and steers, so a mixed-up run shows in its values."""
    with torch.no_grad(), model.trace(prompts_of(worker)):
        hidden = model.layers_output[0].save()
        model.layers_output[0] = hidden * (1 + worker)
        model.steer(1, torch.full((model.hidden_size,), float(worker)))
        logits = model.logits.save()
    return hidden, logits


def run_threads(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as error:  # reported below, never swallowed
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is still waiting for the model"
    return errors


def test_threads_tracing_one_model_get_the_single_threaded_results(models):
    model = models["llama"]
    alone = {worker: intervened_run(model, worker) for worker in range(THREADS)}
    seen: dict[int, list] = {worker: [] for worker in range(THREADS)}

    def work(worker: int) -> None:
        for _ in range(TRACES_PER_THREAD):
            seen[worker].append(intervened_run(model, worker))

    assert run_threads(work, THREADS) == []
    for worker, runs in seen.items():
        assert len(runs) == TRACES_PER_THREAD
        for hidden, logits in runs:
            assert torch.equal(hidden, alone[worker][0])
            assert torch.equal(logits, alone[worker][1])


def test_threads_on_several_models_each_get_their_own_results(models):
    alone = {(name, w): intervened_run(model, w) for name, model in models.items() for w in range(2)}
    pairs = [(name, worker) for name in models for worker in range(2)]
    seen: dict[tuple, list] = {pair: [] for pair in pairs}

    def work(index: int) -> None:
        name, worker = pairs[index]
        for _ in range(TRACES_PER_THREAD):
            seen[(name, worker)].append(intervened_run(models[name], worker))

    assert run_threads(work, len(pairs)) == []
    for pair, runs in seen.items():
        assert len(runs) == TRACES_PER_THREAD
        assert all(torch.equal(l, alone[pair][1]) and torch.equal(h, alone[pair][0]) for h, l in runs)


def test_generate_and_sessions_are_serialised_with_traces(models):
    model = models["llama"]
    prompts = prompts_of(1)
    with torch.no_grad(), model.generate(prompts, max_new_tokens=3, do_sample=False) as tracer:
        alone_ids = tracer.result.save()
    alone_trace = intervened_run(model, 2)
    with torch.no_grad(), model.session():
        with model.trace(prompts):
            first = model.layers_output[0]
        with model.trace(prompts):
            model.layers_output[0] = first * 2
            alone_session = model.logits.save()
    results: dict[str, list] = {"generate": [], "trace": [], "session": []}

    def work(index: int) -> None:
        for _ in range(3):
            if index == 0:
                with torch.no_grad(), model.generate(prompts, max_new_tokens=3, do_sample=False) as tracer:
                    ids = tracer.result.save()
                results["generate"].append(ids)
            elif index == 1:
                results["trace"].append(intervened_run(model, 2))
            else:
                with torch.no_grad(), model.session():
                    with model.trace(prompts):
                        first = model.layers_output[0]
                    with model.trace(prompts):
                        model.layers_output[0] = first * 2
                        logits = model.logits.save()
                results["session"].append(logits)

    assert run_threads(work, 3) == []
    assert [torch.equal(ids, alone_ids) for ids in results["generate"]] == [True] * 3
    assert [torch.equal(run[1], alone_trace[1]) for run in results["trace"]] == [True] * 3
    assert [torch.equal(logits, alone_session) for logits in results["session"]] == [True] * 3


def test_a_failing_trace_in_one_thread_releases_the_model_for_the_others(models):
    model = models["llama"]
    alone = intervened_run(model, 3)
    outcomes: list = []

    def work(index: int) -> None:
        if index % 2 == 0:
            with pytest.raises(RuntimeError, match="user code failed"):
                with torch.no_grad(), model.trace(prompts_of(index)):
                    model.layers_output[0] = model.layers_output[0] * 100
                    raise RuntimeError("user code failed")
            outcomes.append("refused")
        else:
            outcomes.append(torch.equal(intervened_run(model, 3)[1], alone[1]))

    assert run_threads(work, 4) == []
    assert sorted(map(str, outcomes)) == ["True", "True", "refused", "refused"]
    assert not model.interleaver.interleaving
    assert torch.equal(intervened_run(model, 3)[1], alone[1])


def test_the_lock_is_held_until_the_trace_has_run(models):
    """Another thread cannot take the model while a trace's block (run at __exit__) is running."""
    model = models["llama"]
    lock = model.__dict__["_trace_lock"]
    inside: list[bool] = []

    def try_lock() -> None:
        acquired = lock.acquire(blocking=False)
        inside.append(acquired)
        if acquired:
            lock.release()

    with torch.no_grad(), model.trace(prompts_of(0)):
        probe = threading.Thread(target=try_lock)
        probe.start()
        probe.join()
        model.logits.save()
    try_lock_after = threading.Thread(target=try_lock)
    try_lock_after.start()
    try_lock_after.join()
    assert inside == [False, True]
