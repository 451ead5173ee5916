"""Walk a plugin's `.source` labels to an operation inside a module's forward.

nnsight names every call and assignment of an instrumented forward
(``attention_interface_1``, ``query_states_0``) and renumbers those names between
releases. When a label an adapter names is missing, the error says which plugin
named it, which nnsight is installed, and which labels exist, so the fix is one
edit to the plugin's declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import nnsight

from .errors import SourceLabelError

if TYPE_CHECKING:
    from nnsight.intervention.envoy import Envoy
    from nnsight.intervention.source import Source, SourceEnvoy

    from .adapter import Adapter


def _labelled(source: "Source", label: str, adapter: "Adapter", field: str, where: str) -> "SourceEnvoy":
    if label not in source.names:
        raise SourceLabelError(
            f"adapter {adapter.name!r} (plugin {adapter.plugin or '<explicit>'}) declares `{field}` at the "
            f"`.source` label {label!r} inside {where}, but nnsight {nnsight.__version__} has no operation "
            f"with that label there. Labels that exist: {', '.join(source.names) or '(none)'}. "
            f"nnsight renumbers labels between releases: update the adapter's declaration to the label "
            f"of the same operation (print(model.attentions[i].source) shows them), or install the nnsight "
            f"release the plugin was written for."
        )
    return getattr(source, label)


def source_chain(envoy: "Envoy", labels: Sequence[str], adapter: "Adapter", field: str) -> list["SourceEnvoy"]:
    """The operations reached by ``labels`` from ``envoy``'s forward, outermost first.

    Each label after the first is looked up inside the function the previous one
    calls; reaching it needs the live call, so it works only inside a trace, in
    forward order.
    """
    where = f"the forward of {type(envoy._module).__name__}"
    chain = [_labelled(envoy.source, labels[0], adapter, field, where)]
    for label in labels[1:]:
        where = f"the function called at {chain[-1].name!r}"
        chain.append(_labelled(chain[-1].source, label, adapter, field, where))
    return chain


def source_operation(envoy: "Envoy", labels: Sequence[str], adapter: "Adapter", field: str) -> "SourceEnvoy":
    """The operation reached by ``labels`` (see `source_chain`)."""
    return source_chain(envoy, labels, adapter, field)[-1]
