"""The plugin contract: hook specifications implemented by nnrosetta plugins.

A plugin is a module (or any object) with functions marked `@nnrosetta.hookimpl`
whose names match the specifications here, published under the entry-point
group ``nnrosetta``. The module also says which contract it was written for,
``NNROSETTA_CONTRACT = 2``; the registry refuses (as a broken plugin, with what to
do) one written for another contract. The core calls each plugin's hooks
separately so an error is attributed to the plugin that raised it.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "nnrosetta"

#: The contract version this core implements; plugins declare theirs as ``NNROSETTA_CONTRACT``.
CONTRACT_VERSION = 2
#: The module attribute a plugin declares its contract version in.
CONTRACT_ATTRIBUTE = "NNROSETTA_CONTRACT"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_adapters(register: Callable[..., None]) -> None:
    """Declare the plugin's adapters by calling ``register(adapter)`` once per adapter.

    ``register`` takes an `nnrosetta.Adapter` (the family, with a `Variant` per model
    type that differs); the core validates it at once and raises
    `InvalidAdapterError` naming the plugin, the type and the field when it is
    malformed. Nothing is returned; every plugin's implementation is called.
    """


#: Every hook a plugin may implement, for error messages.
HOOK_NAMES = ("register_adapters",)
