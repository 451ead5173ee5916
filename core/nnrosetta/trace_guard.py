"""Traces of one model run one at a time, and nnsight's own errors arrive in nnrosetta's words.

nnsight keeps a trace's state on the model (one interleaver per model), so two
threads tracing the same model at once corrupt each other's runs. Each model
holds a re-entrant lock for the whole of a trace, generate or session, including
``__exit__``, where nnsight actually runs the block; threads with their own model
never wait for each other. A trace opened inside a trace of the same model is
refused (nnsight fails on it with an unrelated AttributeError), as is a read out
of forward order, with the standard name of the value and how to reorder; a name
the block assigned but did not save is bound, after the block, to a stand-in whose
every use says to ``.save()`` it.
"""

from __future__ import annotations

import ast
import contextlib
import threading
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch

from nnsight.intervention.interleaver import OutOfOrderError
from nnsight.intervention.tracer import InterleavingTracer
from nnsight.tracing import tracer as nnsight_tracer
from nnsight.tracing.tracer import Tracer, skip_context, skippable
from nnsight.tracing.util import push

from .accessors import ActivationAccessor, LayerActivations
from .errors import ReadOrderError, TraceUsageError

if TYPE_CHECKING:
    from .model import StandardizedTransformer

#: The standard accessors in the order a forward pass reaches them within one layer.
FORWARD_ORDER = (
    "layers_input", "attentions_input", "attentions_output", "mlps_input", "mlps_output", "layers_output"
)


def trace_lock(model: Any) -> threading.RLock:
    """The model's lock (made once, when the model is built)."""
    return model.__dict__["_trace_lock"]


def install_lock(model: Any) -> None:
    object.__setattr__(model, "_trace_lock", threading.RLock())


def refuse_nested(model: "StandardizedTransformer") -> None:
    """A trace of ``model`` opened while a trace of ``model`` runs (its body, in this thread)."""
    if model.interleaver.interleaving:
        raise TraceUsageError(
            "a trace of this model was opened inside a running trace of the same model; nnsight cannot run "
            "them nested. Close the first `with model.trace(...)` block before opening the next, or put both "
            "inside `with model.session():` to share values between them (or add inputs to one trace with "
            "`tracer.invoke(...)`)."
        )


def standard_name(model: "StandardizedTransformer", request: str) -> Optional[str]:
    """The standard accessor(s) that read nnsight's ``model.<path>.<input|output>.i<n>`` request."""
    parts = request.split(".")
    if len(parts) < 3 or parts[0] != "model" or parts[-2] not in ("input", "output", "inputs"):
        return None
    where = "input" if parts[-2] in ("input", "inputs") else "output"
    path = ".".join(parts[1:-2])
    if path == "":
        return "logits" if where == "output" else "input_ids"
    names = []
    try:
        target = model._module.get_submodule(path)
        for name in FORWARD_ORDER:
            if not name.endswith(where):
                continue
            accessor = getattr(model, name)
            for layer in range(model.num_layers):
                try:
                    site = accessor._site(layer)[1]
                except Exception:  # an absent sublayer: not this accessor
                    break
                if site._module is target:
                    names.append(f"{name}[{layer}]")
        for name, module in (("token_embeddings", "embed_tokens"), ("ln_final", "ln_final"), ("lm_head", "lm_head")):
            try:
                if getattr(model, module)._module is target:
                    names.append(name if name == "token_embeddings" else f"{module}.{where}")
            except Exception:
                continue
    except Exception:
        return None
    return " / ".join(names) or None


def read_order_error(model: "StandardizedTransformer", error: OutOfOrderError) -> ReadOrderError:
    message = str(error)
    request = message.split("'")[1] if message.count("'") >= 2 else message
    name = standard_name(model, request)
    what = f"`{name}` (nnsight's {request})" if name else f"{request}"
    return ReadOrderError(
        f"{what} was read after the forward pass had already run past it. Inside a trace, reads and writes "
        f"must follow forward order: token_embeddings, then layer by layer "
        f"{', '.join(n + '[i]' for n in FORWARD_ORDER)}, then logits. Reorder the block so this read comes "
        f"before the reads of later values (e.g. read layers_output[0] before layers_output[1]), or read it "
        f"in a second trace."
    )


class _Locked:
    """Mixin: hold the model's lock from ``__enter__`` to the end of ``__exit__``."""

    _guarded_model: Any = None

    def _acquire(self, model: Any) -> None:
        trace_lock(model).acquire()
        self._guarded_model = model

    def _release(self) -> None:
        model, self._guarded_model = self._guarded_model, None
        if model is not None:
            trace_lock(model).release()


class GuardedTracer(_Locked, InterleavingTracer):
    """An nnsight trace of a `StandardizedTransformer`: locked, not nested, with errors translated."""

    def __enter__(self) -> "GuardedTracer":
        model = self.envoy
        self._acquire(model)
        try:
            refuse_nested(model)
            # `Tracer.__enter__`, inlined: nnsight finds the user's frame two frames up from these calls.
            self.capture()
            if skippable(self.node):
                skip_context(self)
            return self
        except BaseException:
            self._release()
            raise

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> bool:
        model = self._guarded_model
        frame, node = (self.info.frame if self.info is not None else None), self.node
        try:
            handled = super().__exit__(exc_type, exc_value, traceback)
        except OutOfOrderError as error:
            raise read_order_error(model, error).with_traceback(error.__traceback__) from None
        finally:
            self._release()
        if handled and frame is not None and node is not None:
            mark_unsaved(frame, node)
        return handled

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        from .trace_checks import check_call

        check_call(self.envoy, args, kwargs, generating=False)
        return super().invoke(*args, **kwargs)


class GuardedSession(_Locked, Tracer):
    """An nnsight session of a `StandardizedTransformer`, holding the model's lock throughout."""

    def __init__(self, *args: Any, model: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session_model = model

    def __enter__(self) -> "GuardedSession":
        self._acquire(self._session_model)
        try:
            # `Tracer.__enter__`, inlined: nnsight finds the user's frame two frames up from these calls.
            self.capture()
            if skippable(self.node):
                skip_context(self)
            return self
        except BaseException:
            self._release()
            raise

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> bool:
        model = self._guarded_model
        try:
            return super().__exit__(exc_type, exc_value, traceback)
        except OutOfOrderError as error:
            raise read_order_error(model, error).with_traceback(error.__traceback__) from None
        finally:
            self._release()


@contextlib.contextmanager
def standard_errors(model: "StandardizedTransformer", what: str) -> Iterator[None]:
    """nnsight's errors on reading or writing ``what`` (a standard name), said in its terms."""
    try:
        yield
    except OutOfOrderError as error:
        raise ReadOrderError(
            f"`{what}` was read after the forward pass had already run past it. Inside a trace, reads and "
            f"writes must follow forward order: token_embeddings, then layer by layer "
            f"{', '.join(n + '[i]' for n in FORWARD_ORDER)}, then logits. Move this access above the reads "
            f"of later values (e.g. read layers_output[0] before layers_output[1]), or make it in a second trace."
        ).with_traceback(error.__traceback__) from None
    except ValueError as error:
        if "outside of interleaving" not in str(error):
            raise
        raise TraceUsageError(
            f"`{what}` is a value of a running forward pass, so it exists only inside a trace: use it inside "
            f"`with model.trace(prompts):`, and `.save()` what you need afterwards "
            f"(`value = model.{what}.save()`)."
        ) from None


class TracedActivationAccessor(ActivationAccessor):
    """`ActivationAccessor` whose reads and writes outside a trace or out of order say so by name."""

    def __getitem__(self, index: int) -> torch.Tensor:
        with standard_errors(self._model, f"{self._name}[{index}]"):
            return super().__getitem__(index)

    def __setitem__(self, index: int, value: torch.Tensor) -> None:
        with standard_errors(self._model, f"{self._name}[{index}]"):
            super().__setitem__(index, value)


class TracedActivations(LayerActivations):
    """`LayerActivations` serving `TracedActivationAccessor` views."""

    def __get__(self, model: Any, owner: type) -> Any:
        return self if model is None else TracedActivationAccessor(model, self.name, self.sublayer, self.where)


def _assigned_names(node: ast.AST) -> list[str]:
    """Names a ``with`` body binds in its own scope (not inside functions, classes or comprehensions)."""
    names: list[str] = []
    pending = list(getattr(node, "body", []))
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)
    while pending:
        item = pending.pop()
        if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store) and item.id not in names:
            names.append(item.id)
        if not isinstance(item, scopes):
            pending.extend(ast.iter_child_nodes(item))
    return names


def mark_unsaved(frame: Any, node: ast.AST) -> None:
    """After the outermost trace, bind each name the block assigned but did not save to an `UnsavedValue`.

    nnsight hands back only saved values, so such a name is unbound after the block and the
    user meets an UnboundLocalError or NameError that does not say why; the stand-in says why.
    """
    if getattr(nnsight_tracer._local, "depth", 0) != 0:
        return  # inside a session or an enclosing trace: everything flows up, nothing is dropped yet
    bound = frame.f_locals
    missing = {name: UnsavedValue(name) for name in _assigned_names(node) if name not in bound}
    if missing:
        push(frame, missing)


class UnsavedValue:
    """Stands in, after a trace, for a name its block assigned but did not ``.save()``: any use says so."""

    __slots__ = ("_unsaved_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_unsaved_name", name)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        name = object.__getattribute__(self, "_unsaved_name")
        raise TraceUsageError(
            f"`{name}` was assigned inside the trace but not saved, so the trace did not hand it back (nnsight "
            f"returns only saved values). Inside the block, write `{name} = <value>.save()`; for a list or dict, "
            f"create it before the block and fill it inside."
        )

    def __repr__(self) -> str:
        name = object.__getattribute__(self, "_unsaved_name")
        return f"<{name}: not saved in the trace; write `{name} = <value>.save()` inside the block>"

    def __getattr__(self, attribute: str) -> Any:
        return self._refuse()

    def __setattr__(self, attribute: str, value: Any) -> None:
        self._refuse()

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        for value in (*args, *(kwargs or {}).values()):
            if isinstance(value, UnsavedValue):
                return value._refuse()
        return NotImplemented


for _dunder in (
    "__getitem__", "__setitem__", "__len__", "__iter__", "__bool__", "__float__", "__int__", "__index__",
    "__call__", "__contains__", "__neg__", "__abs__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__",
    "__rmul__", "__matmul__", "__rmatmul__", "__truediv__", "__rtruediv__", "__pow__", "__lt__", "__le__",
    "__gt__", "__ge__", "__array__", "__format__",
):
    setattr(UnsavedValue, _dunder, UnsavedValue._refuse)
