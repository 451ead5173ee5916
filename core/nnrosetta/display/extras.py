"""The optional ``display`` extra: import plotly or matplotlib, or say how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependencyError


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)``, or an error naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{module} is needed to draw plots but is not installed ({error}); "
            f"install the display extra (from a clone of nnrosetta: pip install './[display]')."
        ) from error
