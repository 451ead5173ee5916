"""The plugin contract: hook specifications implemented by nnrosetta plugins.

A plugin is a module (or any object) with functions marked `@nnrosetta.hookimpl`
whose names match the specifications here, published under the entry-point
group ``nnrosetta``. The core calls each plugin's hooks separately so an error is
attributed to the plugin that raised it.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "nnrosetta"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_adapters(register: Callable[..., None]) -> None:
    """Declare the plugin's adapters by calling ``register(adapter)`` once per adapter.

    ``register`` takes an `nnrosetta.Adapter`; the core validates it at once and
    raises `InvalidAdapterError` naming the plugin and the field when it is
    malformed. Nothing is returned; every plugin's implementation is called.
    """
