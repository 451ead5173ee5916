"""Traces that run where the weights are: on NDIF (``remote=True``) or nnsight's simulation of it.

A remote run ships the trace block, and everything it calls, to a server that
holds the checkpoint and nnsight but has never heard of nnrosetta. What makes a
`StandardizedTransformer` travel (the `RemoteInterface` mixin of the model):

- nnrosetta and every installed plugin are registered with nnsight for pickling
  by value, so the accessors, methods and adapter code go with the request
  (`register_by_value`); nnsight alone would ship them by name, which a server
  without them cannot import;
- the plugin registry (a pluggy manager holding every plugin module) stays
  behind: it builds models and is never used inside a trace; functions of the
  registry's modules that the model class names become stubs, and pytest's
  assertion helpers (named by asserts pytest rewrote) a plain stand-in, so
  neither pluggy nor pytest is needed on the server;
- a method that runs several traces sends them as one request: a session whose
  body runs the method where the model is (`as_one_job`);
- the request names the plain HuggingFace checkpoint (nnsight's
  ``TransformersModel`` key), the deployment NDIF serves;
- on the far side the model re-attaches the per-call records its forward hooks
  keep (each layer's batch and sequence size), instead of a stale copy, and gets
  a fresh trace lock (a lock cannot travel).

``remote="local"`` (nnsight's simulation: serialize, deserialize with local
modules hidden, run here) takes the same path, so it proves the request is
complete. Before a ``remote=True`` request leaves, what can be checked here is
checked, each failure one nnrosetta error within seconds: the model must be named
by a hub id, an API key must be set, and the NDIF host must answer.
"""

from __future__ import annotations

import contextlib
import copyreg
import functools
import inspect
import linecache
import os
import socket
import textwrap
import threading
import types
from importlib.metadata import entry_points
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

from .errors import NnrosettaError

#: Seconds to wait for the NDIF host to accept a connection before giving up.
CONNECT_TIMEOUT_ENV = "NNROSETTA_REMOTE_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 5.0

#: Where NDIF API keys are issued (named in the error when none is set).
NDIF_KEYS_URL = "https://login.ndif.us"



def _lock_kind(value: Any) -> Optional[str]:
    """"lock" or "RLock" for a threading lock, else None.

    By name: the lock types themselves are not importable by name, so code that
    held them would make the pickler ship a broken copy of the type.
    """
    kind = type(value)
    if kind.__module__ == "_thread" and kind.__name__ in ("lock", "RLock"):
        return kind.__name__
    return None


class RemoteExecutionError(NnrosettaError, RuntimeError):
    """A remote run cannot start: the model, the API key or the NDIF host is not usable from here."""


# -- what travels by value ----------------------------------------------------


def by_value_modules() -> list[str]:
    """nnrosetta, its conformance package, and the top-level module of every installed plugin."""
    names = ["nnrosetta", "nnrosetta_conformance"]
    for entry in entry_points(group="nnrosetta"):
        root = entry.module.split(".")[0]
        if root not in names:
            names.append(root)
    return names


def register_by_value() -> list[str]:
    """Have nnsight pickle nnrosetta and the installed plugins by value; returns the module names.

    Idempotent (nnsight keeps a set). A plugin published outside the ``nnrosetta``
    entry-point group, or an adapter declared in another installed package, is
    registered with ``nnsight.register(module)``.
    """
    from nnsight import ndif

    names = by_value_modules()
    for name in names:
        ndif.register(name)
    _REGISTERED.update(names)
    return names


#: The module roots `register_by_value` has registered in this process.
_REGISTERED: set[str] = set()


#: Modules that build models and never run inside a trace: what of them a request names stays behind.
LEFT_BEHIND_MODULES = ("nnrosetta.registry", "nnrosetta.hookspecs")


def _no_registry() -> None:
    return None


def _left_behind(name: str) -> Any:
    """What a function of a left-behind module becomes on the server: a stub that says why it is missing."""

    def left_behind(*args: Any, **kwargs: Any) -> Any:
        raise RemoteExecutionError(
            f"{name} (plugin registry, pluggy) is not shipped with a remote request: it builds models and "
            f"is never needed inside a trace. Call it before the trace, here."
        )

    return left_behind


def _left_behind_reduce(function: types.FunctionType) -> Optional[tuple]:
    """The stub's reduction for a function of the registry's modules, else None.

    The model's class names them (``StandardizedTransformer.__init__`` calls
    ``default_registry``); shipping them would ship pluggy, which a server need not have.
    """
    if getattr(function, "__module__", None) in LEFT_BEHIND_MODULES:
        return (_left_behind, (f"{function.__module__}.{function.__qualname__}",))
    return None


def _reduce_registry(registry: Any) -> tuple:
    """A plugin registry becomes None on the server: no trace uses it (it only builds models)."""
    return (_no_registry, ())


def _lru_cached(function: Any, maxsize: Optional[int]) -> Any:
    return functools.lru_cache(maxsize=maxsize)(function)


def _reduce_lru_cache(wrapper: Any) -> Any:
    """An ``functools.lru_cache`` function of a by-value module travels as its function, cached again there.

    Pickle would name it (``module.function``), which a server without the module cannot import.
    """
    function = getattr(wrapper, "__wrapped__", None)
    module = getattr(function, "__module__", "") or ""
    if function is None or module.split(".")[0] not in (_REGISTERED or by_value_modules()):
        return wrapper.__reduce__()
    return (_lru_cached, (function, wrapper.cache_parameters()["maxsize"]))


#: Each shipped function's source lines and first line, read once per process (by its code object).
_SOURCES: dict[types.CodeType, tuple[list[str], int]] = {}


def _source_lines(function: Any) -> tuple[list[str], int]:
    """``inspect.getsourcelines(function)``, remembered: a request ships hundreds of functions.

    Reading them again for every request cost most of its pickling time (over a
    second on a tiny model), and a copy read once stays the code that runs even
    when the file is edited while the process lives.
    """
    try:  # inspect reads a wrapped function's source from the function it wraps: key by that one
        code = getattr(inspect.unwrap(function), "__code__", None)
    except ValueError:
        code = None
    if not isinstance(code, types.CodeType):
        return inspect.getsourcelines(function)
    if code not in _SOURCES:
        _SOURCES[code] = inspect.getsourcelines(function)
    return _SOURCES[code]


class _RememberedSources:
    """``inspect`` as nnsight's serializer sees it while a request is pickled: sources come from `_source_lines`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    @staticmethod
    def getsourcelines(function: Any) -> tuple[list[str], int]:
        return _source_lines(function)

    @staticmethod
    def getsource(function: Any) -> str:
        return "".join(_source_lines(function)[0])


def _load_method(
    source: str, name: str, defaults: Any, kwdefaults: Any, annotations: Any, filename: str, line: int, owner: type
) -> types.FunctionType:
    """Rebuild a method that calls ``super()`` from its source, compiled inside a class of its owner's name.

    Zero-argument ``super()`` reads the ``__class__`` cell the compiler makes only for
    functions written in a class body; nnsight recompiles shipped functions at module
    level, where that cell is missing (``RuntimeError: super(): __class__ cell not found``).
    """
    body = textwrap.indent(source, "    ")
    padded = "\n" * max(line - 2, 0) + f"class {owner.__name__}:\n" + body
    label = f"[{name}:{line}] {filename}"
    module_code = compile(padded, label, "exec")
    class_code = next(c for c in module_code.co_consts if isinstance(c, types.CodeType))
    code = [c for c in class_code.co_consts if isinstance(c, types.CodeType) and c.co_name == name][-1]
    closure = tuple(types.CellType(owner) if free == "__class__" else types.CellType() for free in code.co_freevars)
    linecache.cache[label] = (len(padded), None, padded.splitlines(keepends=True), label)
    function = types.FunctionType(code, {"__builtins__": __builtins__}, name, defaults, closure)
    if kwdefaults:
        function.__kwdefaults__ = kwdefaults
    if annotations:
        function.__annotations__ = annotations
    return function


def _method_reduce(function: types.FunctionType) -> Optional[tuple]:
    """The reduction of a by-value method whose only free variable is ``__class__``, or None."""
    from nnsight.intervention.serialization import _fill, code_reduce

    code = function.__code__
    if code.co_freevars != ("__class__",) or code.co_name == "<lambda>":
        return None
    try:
        lines, line = _source_lines(function)
        source = textwrap.dedent("".join(lines))
    except (OSError, TypeError):
        return None
    owner = function.__closure__[0].cell_contents
    source, used_globals, _ = code_reduce(source, function.__globals__, {}, function=True)
    used_globals.pop("__class__", None)
    arguments = (
        source, function.__name__, function.__defaults__, function.__kwdefaults__, function.__annotations__,
        code.co_filename, line, owner,
    )
    return (_load_method, arguments, used_globals, None, None, _fill)


#: The module pytest's rewritten asserts call (as the global ``@pytest_ar``).
PYTEST_ASSERTIONS = "_pytest.assertion.rewrite"


class _PlainAssertions:
    """Stands in for pytest's assertion helpers on the server: a failing assert still raises AssertionError.

    Under pytest an installed nnrosetta is loaded through pytest's assertion
    rewriting (its distribution ships a pytest plugin), so its asserts name
    ``_pytest.assertion.rewrite``; shipped by name, that would import pytest and
    pluggy on a server that has neither. Only a failing assert calls the helpers.
    """

    def _should_repr_global_name(self, value: Any) -> bool:
        return False

    def _check_if_assertion_pass_impl(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: " ".join(str(arg) for arg in args)


def _plain_assertions() -> _PlainAssertions:
    return _PlainAssertions()


@contextlib.contextmanager
def request_pickling() -> Iterator[None]:
    """While a request is pickled: the registry (and pluggy) stays behind, cached and ``super()``-calling functions travel.

    Scoped to the request: copy and pickle elsewhere in the process are untouched.
    """
    from nnsight.intervention import serialization
    from nnsight.intervention.serialization import CustomCloudPickler

    from .registry import Registry

    reducers = {Registry: _reduce_registry, type(_lru_cached_probe): _reduce_lru_cache}
    previous = {kind: copyreg.dispatch_table.get(kind) for kind in reducers}
    function_reduce = CustomCloudPickler._dynamic_function_reduce

    def reduce_function(pickler: Any, function: types.FunctionType) -> tuple:
        return _left_behind_reduce(function) or _method_reduce(function) or function_reduce(pickler, function)

    from cloudpickle import cloudpickle as pickling

    table = pickling.Pickler._dispatch_table
    module_reduce = table[types.ModuleType]

    def reduce_module(module: types.ModuleType) -> tuple:
        if module.__name__ == PYTEST_ASSERTIONS:
            return (_plain_assertions, ())
        # A module shipped by value must not carry its loader: pytest's (assertion rewriting) holds a lock.
        reduced = module_reduce(module)
        if reduced[0] is pickling.dynamic_subimport:
            name, state = reduced[1]
            state = {k: v for k, v in state.items() if k not in ("__loader__", "__spec__")}
            return (pickling.dynamic_subimport, (name, state))
        return reduced

    copyreg.dispatch_table.update(reducers)
    CustomCloudPickler._dynamic_function_reduce = reduce_function
    table[types.ModuleType] = reduce_module
    serialization.inspect = _RememberedSources()
    try:
        yield
    finally:
        serialization.inspect = inspect
        table[types.ModuleType] = module_reduce
        CustomCloudPickler._dynamic_function_reduce = function_reduce
        for kind, reducer in previous.items():
            if reducer is None:
                copyreg.dispatch_table.pop(kind, None)
            else:
                copyreg.dispatch_table[kind] = reducer


@functools.lru_cache(maxsize=None)
def _lru_cached_probe() -> None:
    """Exists for its type: ``functools._lru_cache_wrapper`` is not importable by a public name."""


class _Travelling:
    """A remote backend whose request carries nnrosetta by value and leaves the registry behind."""

    def __init__(self, backend: Any, host: Optional[str]) -> None:
        self._backend = backend
        self._host = host

    def __call__(self, tracer: Any = None) -> Any:
        register_by_value()
        with request_pickling():
            try:
                return self._backend(tracer)
            except (OSError, ConnectionError) as error:
                raise RemoteExecutionError(
                    f"the remote run could not reach NDIF at {self._host}: {type(error).__name__}: {error}. "
                    f"Check the network, or the host (NDIF_HOST)."
                ) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def as_one_job(model: Any, remote: Any, method: Any, *args: Any, **kwargs: Any) -> Any:
    """``method(model, *args, **kwargs, remote=False)`` as ONE remote request: a session whose body calls it.

    A method that runs several traces would send one request per trace, and bring
    each intermediate value back here; in one session (``model.session(remote=...)``)
    every trace runs where the model is and only the result comes back.
    """
    import nnsight

    with model.session(remote=remote):
        result = nnsight.save(method(model, *args, remote=False, **kwargs))
    return result


# -- checks before a request leaves -------------------------------------------


def connect_timeout() -> float:
    """The NDIF connection timeout in seconds (``NNROSETTA_REMOTE_CONNECT_TIMEOUT``, default 5)."""
    value = os.environ.get(CONNECT_TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        raise RemoteExecutionError(
            f"{CONNECT_TIMEOUT_ENV}={value!r} is not a number of seconds; set it to e.g. 5."
        ) from None


def check_reachable(host: str, timeout: Optional[float] = None) -> None:
    """Raise `RemoteExecutionError` unless ``host`` (an http(s) URL) accepts a TCP connection in time."""
    timeout = connect_timeout() if timeout is None else timeout
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteExecutionError(
            f"the NDIF host {host!r} is not an http(s) URL; set NDIF_HOST (or pass remote='https://...')."
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise RemoteExecutionError(
            f"NDIF at {host} cannot be reached ({type(error).__name__}: {error}; waited at most {timeout:g}s). "
            f"remote=True needs the network; check it, or the host (NDIF_HOST). Without a network, "
            f"remote='local' runs the same request here."
        ) from None


def check_hub_id(repo_id: Any) -> str:
    """The model's hub id, or `RemoteExecutionError` for a model that NDIF cannot know by name."""
    if not isinstance(repo_id, str) or not repo_id:
        raise RemoteExecutionError(
            "remote=True runs a checkpoint hosted on NDIF, named by its hub id, but this model was built "
            "from a module object; load it by id: StandardizedTransformer('org/name', dispatch=False, "
            "check=False). remote='local' runs it here through the same request."
        )
    if os.path.isdir(repo_id) or repo_id.startswith(("/", ".", "~")):
        raise RemoteExecutionError(
            f"remote=True runs a checkpoint hosted on NDIF, named by its hub id, but this model was loaded "
            f"from the folder {repo_id!r}, which NDIF cannot read; load it by hub id: "
            f"StandardizedTransformer('org/name', dispatch=False, check=False). remote='local' runs it here "
            f"through the same request."
        )
    return repo_id


def check_api_key() -> None:
    """Raise `RemoteExecutionError` when no NDIF API key is configured."""
    from nnsight import CONFIG

    if not CONFIG.API.APIKEY:
        raise RemoteExecutionError(
            f"remote=True needs an NDIF API key and none is set; get one at {NDIF_KEYS_URL}, then set "
            f"NDIF_API_KEY in the environment or call nnsight.CONFIG.set_default_api_key('<key>')."
        )


# -- the model's side ---------------------------------------------------------


def _hook_record(module: Any, table: str, function: str) -> Optional[dict]:
    """The dict a ``functools.partial(<function>, record, ...)`` hook on ``module`` writes into."""
    for hook in getattr(module, table).values():
        if getattr(getattr(hook, "func", None), "__name__", None) == function and hook.args:
            if isinstance(hook.args[0], dict):
                return hook.args[0]
    return None


class RemoteInterface:
    """Mixin of `StandardizedTransformer`: what a remote run (or its local simulation) needs."""

    def _remote_backend(self, remote: Any, blocking: bool, job_id: Optional[str], verbose: bool) -> Any:
        host = None
        if remote != "local":
            from nnsight import CONFIG

            check_hub_id(getattr(self, "repo_id", None))
            if remote is True:
                check_api_key()
            host = remote if isinstance(remote, str) else CONFIG.API.HOST
            check_reachable(host)
        register_by_value()
        return _Travelling(super()._remote_backend(remote, blocking, job_id, verbose), host)

    def _remoteable_class(self) -> type:
        # NDIF serves plain HuggingFace checkpoints; the standard names travel with the request.
        from nnsight.modeling.transformers import TransformersModel

        return TransformersModel

    def _remoteable_model_key(self) -> str:
        try:
            return super()._remoteable_model_key()
        except Exception as error:  # the hub look-up that canonicalises the id: offline, unknown id
            raise RemoteExecutionError(
                f"the hub id {getattr(self, 'repo_id', None)!r} could not be resolved for NDIF "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); check the id "
                f"and the network."
            ) from None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        locks = {name: _lock_kind(value) for name, value in state.items() if _lock_kind(value)}
        for name in locks:
            del state[name]
        state["_nnrosetta_locks"] = {name: kind == "RLock" for name, kind in locks.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        locks = state.pop("_nnrosetta_locks", {})
        super().__setstate__(state)
        for name, reentrant in locks.items():
            object.__setattr__(self, name, threading.RLock() if reentrant else threading.Lock())
        self._reattach_records()

    def _reattach_records(self) -> None:
        """Point the shape records at the dicts the hooks on these modules fill, hooking them if none do.

        The records (each layer's batch and sequence, its output container, each MoE
        block's tokens) are written by forward hooks on the modules; a deserialized
        model holds a copy taken when the request was pickled. On the server the
        modules are the server's: hook them once (a later request finds the hooks);
        in the local simulation they are the caller's, whose hooks are found.
        """
        if "_layer_shapes" in self.__dict__:
            first = self.layers[0]._module
            shapes = _hook_record(first, "_forward_pre_hooks", "_note_layer_shape")
            outputs = _hook_record(first, "_forward_hooks", "_note_layer_output")
            if shapes is not None and outputs is not None:
                object.__setattr__(self, "_layer_shapes", shapes)
                object.__setattr__(self, "_layer_outputs", outputs)
            else:
                self.__dict__.pop("_shapes_hooked_module", None)
                self._record_layer_shapes()
        if "_moe_block_shapes" in self.__dict__:
            layers = self.moe_layers
            blocks = _hook_record(self.layers[layers[0]].mlp._module, "_forward_pre_hooks", "_note_block_shape") if layers else None
            if blocks is not None:
                object.__setattr__(self, "_moe_block_shapes", blocks)
            else:
                self.__dict__.pop("_moe_hooked_module", None)
                self._record_moe_block_shapes()
