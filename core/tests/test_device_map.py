"""A model split by ``device_map`` gives results bit-identical to the model in one piece.

CPU plus disk offload is the multi-device case a CPU machine can run: accelerate's
``device_map="auto"`` with a ``max_memory`` below the model's size keeps the first
modules on the CPU and offloads the rest to ``offload_folder``, loading each
offloaded module's weights for its forward. Every accessor (read and written),
steering, the patching methods and the lens must not notice. (The GPU forms,
bf16 and several CUDA devices, are in ``bench/gpu_check.py``.)
"""

from __future__ import annotations

import pytest

from nnrosetta import StandardizedTransformer
from nnrosetta_conformance.tiny import save_tiny
from test_remote_local import METHODS, _equal

#: Share of the model's bytes the CPU may hold: the rest (later layers, final norm, head) goes to disk.
CPU_SHARE = 0.9


@pytest.fixture(scope="module", params=("llama", "gpt2"))
def models(request, tmp_path_factory) -> tuple[StandardizedTransformer, StandardizedTransformer]:
    """(in one piece, offloaded) from the same saved tiny model."""
    folder = tmp_path_factory.mktemp(request.param)
    path = str(save_tiny(request.param, folder / "model"))
    whole = StandardizedTransformer(path, enable_attention_probs=True)
    size = sum(p.numel() * p.element_size() for p in whole._module.parameters())
    offloaded = StandardizedTransformer(
        path,
        enable_attention_probs=True,
        device_map="auto",
        max_memory={"cpu": int(size * CPU_SHARE)},
        offload_folder=str(folder / "offload"),
    )
    return whole, offloaded


def test_the_model_is_split_between_cpu_and_disk(models) -> None:
    whole, offloaded = models
    devices = offloaded._module.hf_device_map
    assert set(devices.values()) == {"cpu", "disk"}, devices
    layer_devices = [devices.get(name) for name in devices if name.rsplit(".", 1)[-1].isdigit()]
    assert "cpu" in layer_devices and "disk" in layer_devices, devices
    meta = {name for name, p in offloaded._module.named_parameters() if p.device.type == "meta"}
    assert meta and len(meta) < len(list(offloaded._module.parameters())), "no weight (or every weight) is offloaded"
    assert not hasattr(whole._module, "hf_device_map")


@pytest.mark.parametrize("method", list(METHODS))
def test_offloaded_model_is_bit_identical_to_the_model_in_one_piece(models, method) -> None:
    whole, offloaded = models
    run, _ = METHODS[method]
    _equal(run(whole, False), run(offloaded, False), method)
