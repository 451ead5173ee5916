"""What a value written into the forward pass must be, checked before it is written.

A tensor of the wrong dtype is cast back by the next norm (int64 ones truncate the
stream silently), one on the meta device holds no values, and a NaN or inf spreads
through every later position without a word. Each is refused here, with the value
seen and the fix. Non-finite values are refused by default; set
``model.allow_non_finite_writes = True`` to write them on purpose (a NaN probe).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .errors import InvalidValueError, ShapeError


def _non_finite(value: torch.Tensor) -> int:
    if not (value.dtype.is_floating_point or value.dtype.is_complex):
        return 0
    return int((~torch.isfinite(value.detach())).sum())


def check_written(model: Any, name: str, value: Any, current: torch.Tensor) -> None:
    """``value`` may replace ``current`` as ``name``: a tensor of its dtype and device, finite by default."""
    if not isinstance(value, torch.Tensor):
        raise ShapeError(
            f"{name} must be set to a torch.Tensor of shape {tuple(current.shape)}, got {type(value).__name__}; "
            f"edit the tensor you read (e.g. `h = model.{name.split('[')[0]}[...].clone()`) and write that back."
        )
    if value.device.type == "meta" and current.device.type != "meta":
        raise InvalidValueError(
            f"{name}: the value written is on the meta device, so it holds no values; build it on "
            f"{current.device} (e.g. `torch.zeros_like(current)`), not from a meta tensor."
        )
    if value.dtype != current.dtype:
        raise InvalidValueError(
            f"{name} is {current.dtype} but the value written is {value.dtype}; the model would cast it "
            f"(integers truncate, float64 is rounded) without a word. Convert it first: `value.to({current.dtype})`."
        )
    if value.device != current.device and current.device.type != "meta":
        raise InvalidValueError(
            f"{name} is on {current.device} but the value written is on {value.device}; move it first: "
            f"`value.to('{current.device}')`."
        )
    if not getattr(model, "allow_non_finite_writes", False):
        count = _non_finite(value)
        if count:
            raise InvalidValueError(
                f"{name}: the value written holds {count} NaN or inf entries, which would spread to every "
                f"later position; write finite values, or set `model.allow_non_finite_writes = True` to write "
                f"them on purpose."
            )


def check_hidden_argument(model: Any, hidden: Any, method: str, argument: str = "hidden") -> torch.Tensor:
    """A residual-stream tensor handed to a method: a tensor, floating point, of the model's hidden size."""
    if not isinstance(hidden, torch.Tensor):
        raise ShapeError(
            f"{method} expects `{argument}` to be a torch.Tensor with last dimension hidden_size={model.hidden_size}, "
            f"got {type(hidden).__name__}; convert it with torch.tensor(...) (or pass a value read in a trace)."
        )
    if hidden.shape[-1:] != (model.hidden_size,):
        raise ShapeError(
            f"{method} expects a last dimension of hidden_size={model.hidden_size}, got shape {tuple(hidden.shape)}."
        )
    parameter = next(model._module.parameters(), None)
    if parameter is not None and hidden.dtype != parameter.dtype:
        raise InvalidValueError(
            f"{method}: `{argument}` is {hidden.dtype} but the model computes in {parameter.dtype}; convert it "
            f"first: `{argument}.to({parameter.dtype})`."
        )
    return hidden


def check_steering_vector(model: Any, vector: torch.Tensor, factor: float) -> None:
    """A steering vector is real, finite (unless allowed) and floating point; so is its factor."""
    if not (vector.dtype.is_floating_point or vector.dtype.is_complex):
        raise InvalidValueError(
            f"steering_vector has dtype {vector.dtype}; it is added to the residual stream, so it must be "
            f"floating point: `steering_vector.float()` (or `.to(model.dtype)`)."
        )
    if vector.device.type == "meta":
        raise InvalidValueError("steering_vector is on the meta device, so it holds no values; build it on a real device.")
    if not getattr(model, "allow_non_finite_writes", False):
        count = _non_finite(vector)
        if count or not math.isfinite(float(factor)):
            raise InvalidValueError(
                f"steer: the steering_vector holds {count} NaN or inf entries (factor={factor}), which would "
                f"spread to every later position; pass finite values, or set `model.allow_non_finite_writes = "
                f"True` to steer with them on purpose."
            )
