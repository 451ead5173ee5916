"""nnterp's API on nnrosetta: ``import nnrosetta.nnterp as nnterp`` is the migration for most nnterp code.

The module layout mirrors nnterp's (``nnrosetta.nnterp.interventions``,
``.prompt_utils``, ``.nnsight_utils``, ``.rename_utils``, ``.display``) and each
name keeps nnterp's arguments and results; the work is done by nnrosetta's own
modules. Where nnrosetta's behaviour differs (layer order in lenses, first-token
helpers, patchscope generation), the names here give nnterp's. See docs/nnterp.md.
"""

from . import display, interventions, nnsight_utils, prompt_utils, rename_utils
from .rename_utils import ModuleAccessor, RenameConfig
from .standardized import StandardizedTransformer

__all__ = [
    "ModuleAccessor",
    "RenameConfig",
    "StandardizedTransformer",
    "display",
    "interventions",
    "nnsight_utils",
    "prompt_utils",
    "rename_utils",
]
