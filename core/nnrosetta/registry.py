"""Plugin discovery and model -> adapter resolution.

Discovery order, step by step:
1. Unless ``NNROSETTA_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value, every entry
   point in the group ``nnrosetta`` of the installed distributions is imported
   (``NNROSETTA_PLUGINS=a,b`` limits that to the named entry points).
2. Objects passed to `register_plugin` at run time are added.
3. Each plugin's ``register_adapters`` hook is called on its own; an import error,
   a raising hook or a malformed adapter marks that plugin broken (reported by
   ``nnrosetta adapters``) and the others keep working.

Resolution: an explicit adapter wins; else the adapter claiming the config's
``model_type``; else one claiming the model class. Two claims of equal priority
are an `AdapterConflictError` naming both plugins, never a silent last-wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, distributions, entry_points
from typing import Any, Iterable, Optional, Sequence, Union

import pluggy

from . import hookspecs
from .adapter import Adapter
from .errors import AdapterConflictError, InvalidAdapterError, UnsupportedArchitectureError

ENTRY_POINT_GROUP = "nnrosetta"
DISABLE_AUTOLOAD_ENV = "NNROSETTA_DISABLE_PLUGIN_AUTOLOAD"
ONLY_PLUGINS_ENV = "NNROSETTA_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, the distribution that ships it, and its version."""

    name: str
    distribution: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}".strip()


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that failed to import, whose hook raised, or that declared a bad adapter."""

    name: str
    distribution: str
    version: str
    error: str

    def __str__(self) -> str:
        return f"{self.name} ({self.distribution} {self.version}): {self.error}"


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


class Registry:
    """Owns the pluggy manager, the loaded plugins, their adapters and the broken ones."""

    def __init__(self, autoload: Optional[bool] = None, search_path: Optional[Sequence[str]] = None) -> None:
        """``search_path`` limits discovery to distributions installed in those folders (default: sys.path)."""
        self.search_path = list(search_path) if search_path is not None else None
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.autoload = (not _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV))) if autoload is None else autoload
        self.plugins: dict[str, PluginInfo] = {}
        self.broken: list[BrokenPlugin] = []
        self._entry_points_loaded = False
        self._adapters: Optional[dict[str, Adapter]] = None

    # -- plugins -------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Import every plugin published under the ``nnrosetta`` entry-point group, once."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        if not self.autoload:
            return
        only = {name.strip() for name in os.environ.get(ONLY_PLUGINS_ENV, "").split(",") if name.strip()}
        for entry_point in self._entry_points():
            if only and entry_point.name not in only:
                continue
            dist = getattr(entry_point, "dist", None)
            distribution = dist.name if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            try:
                plugin = entry_point.load()
            except Exception as error:  # noqa: BLE001 - a broken plugin must not break the others
                self.broken.append(
                    BrokenPlugin(
                        entry_point.name,
                        distribution,
                        version,
                        f"import of entry point {entry_point.value!r} failed: {type(error).__name__}: {error}",
                    )
                )
                continue
            self._add(plugin, PluginInfo(entry_point.name, distribution, version))

    def _entry_points(self) -> list[EntryPoint]:
        if self.search_path is None:
            return list(entry_points(group=ENTRY_POINT_GROUP))
        return [
            entry_point
            for dist in distributions(path=self.search_path)
            for entry_point in dist.entry_points
            if entry_point.group == ENTRY_POINT_GROUP
        ]

    def register_plugin(self, plugin: Any, name: Optional[str] = None) -> PluginInfo:
        """Register a plugin object at run time (a notebook, code not yet packaged).

        Its adapters are validated at once: a malformed one raises here.
        """
        self.load_entry_points()
        plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = PluginInfo(plugin_name, "<run-time>", "")
        self._add(plugin, info)
        self._adapters = None
        self.adapters()
        problem = next((b for b in self.broken if b.name == plugin_name), None)
        if problem is not None:
            self.manager.unregister(name=plugin_name)
            self.plugins.pop(plugin_name, None)
            self.broken.remove(problem)
            self._adapters = None
            raise InvalidAdapterError(problem.error)
        return info

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        if info.name in self.plugins:
            raise AdapterConflictError(
                f"a plugin named {info.name!r} is already registered (from {self.plugins[info.name].label}); "
                f"register the new one under another name: register_plugin(obj, name=...)."
            )
        self.manager.register(plugin, name=info.name)
        self.plugins[info.name] = info
        self._adapters = None

    # -- adapters ------------------------------------------------------------

    def adapters(self) -> list[Adapter]:
        """Every valid adapter of every working plugin, in registration order."""
        self.load_entry_points()
        if self._adapters is None:
            self._adapters = self._collect()
        return list(self._adapters.values())

    def _collect(self) -> dict[str, Adapter]:
        collected: dict[str, Adapter] = {}
        for implementation in self.manager.hook.register_adapters.get_hookimpls():
            info = self.plugins[implementation.plugin_name]
            if any(b.name == info.name for b in self.broken):
                continue
            declared: list[Adapter] = []

            def register(adapter: Adapter, _declared: list = declared, _plugin: str = info.label) -> None:
                if not isinstance(adapter, Adapter):
                    raise InvalidAdapterError(
                        f"plugin {_plugin!r} passed {type(adapter).__name__} to register(); "
                        f"expected an nnrosetta.Adapter."
                    )
                adapter.validate(_plugin)
                _declared.append(adapter.with_plugin(_plugin))

            try:
                implementation.function(register=register)
                for adapter in declared:
                    if adapter.name in collected or sum(a.name == adapter.name for a in declared) > 1:
                        other = collected.get(adapter.name, adapter)
                        raise AdapterConflictError(
                            f"adapter name {adapter.name!r} is declared by both {other.plugin!r} and "
                            f"{adapter.plugin!r}; adapter names must be unique. Rename one adapter."
                        )
            except Exception as error:  # noqa: BLE001 - attribute the failure to its plugin
                self.broken.append(
                    BrokenPlugin(
                        info.name,
                        info.distribution,
                        info.version,
                        f"register_adapters raised {type(error).__name__}: {error}",
                    )
                )
                continue
            collected.update((adapter.name, adapter) for adapter in declared)
        return collected

    def adapter(self, name: str) -> Adapter:
        """The adapter with this name, or an error listing the installed ones."""
        for adapter in self.adapters():
            if adapter.name == name:
                return adapter
        raise UnsupportedArchitectureError(
            f"no installed adapter is named {name!r}. {self.describe_installed()}"
        )

    def claims(self) -> dict[str, list[Adapter]]:
        """model_type -> adapters claiming it, highest priority first."""
        table: dict[str, list[Adapter]] = {}
        for adapter in self.adapters():
            for model_type in adapter.model_types:
                table.setdefault(model_type, []).append(adapter)
        for claimants in table.values():
            claimants.sort(key=lambda a: -a.priority)
        return table

    def conflicts(self) -> dict[str, list[Adapter]]:
        """model types claimed by two or more adapters of the same top priority."""
        return {
            model_type: [a for a in claimants if a.priority == claimants[0].priority]
            for model_type, claimants in self.claims().items()
            if len(claimants) > 1 and claimants[0].priority == claimants[1].priority
        }

    def resolve(
        self,
        model_type: Optional[str],
        class_names: Iterable[str] = (),
        adapter: Union[Adapter, str, None] = None,
    ) -> Adapter:
        """Pick the adapter for a model: explicit > claimed model_type > claimed class."""
        if isinstance(adapter, Adapter):
            adapter.validate(adapter.plugin or "<explicit>")
            return adapter
        if isinstance(adapter, str):
            return self.adapter(adapter)
        class_names = [c for c in class_names if c]
        by_type = [a for a in self.adapters() if model_type in a.model_types]
        chosen = self._pick(by_type, f"model_type {model_type!r}")
        if chosen is not None:
            return chosen
        by_class = [a for a in self.adapters() if set(a.model_classes) & set(class_names)]
        chosen = self._pick(by_class, f"model class {'/'.join(class_names)!r}")
        if chosen is not None:
            return chosen
        raise UnsupportedArchitectureError(
            f"no installed adapter claims model_type {model_type!r}"
            + (f" or class {', '.join(class_names)}" if class_names else "")
            + f". {self.describe_installed()} To serve it, install the plugin for its family "
            f"(pip install nnrosetta-<family>), register one at run time with "
            f"nnrosetta.register_plugin(...), or pass adapter='<name>' to StandardizedTransformer "
            f"to use an installed adapter whose module tree matches."
        )

    @staticmethod
    def _pick(claimants: list[Adapter], what: str) -> Optional[Adapter]:
        if not claimants:
            return None
        ranked = sorted(claimants, key=lambda a: -a.priority)
        if len(ranked) > 1 and ranked[0].priority == ranked[1].priority:
            tied = [a for a in ranked if a.priority == ranked[0].priority]
            raise AdapterConflictError(
                f"{what} is claimed by {len(tied)} adapters with priority {ranked[0].priority}: "
                + ", ".join(f"{a.name!r} from {a.plugin!r}" for a in tied)
                + ". Uninstall one plugin, give one adapter a higher `priority`, or pass adapter='<name>'."
            )
        return ranked[0]

    def describe_installed(self) -> str:
        """One sentence listing installed adapters and broken plugins, for error messages."""
        adapters = self.adapters()
        text = (
            "Installed adapters: "
            + "; ".join(f"{a.name} ({', '.join(a.model_types)}) from {a.plugin}" for a in adapters)
            + "."
            if adapters
            else "No adapters are installed (install a plugin such as nnrosetta-llama)."
        )
        if not self.autoload:
            text += f" Plugin autoloading is off ({DISABLE_AUTOLOAD_ENV} is set)."
        if self.broken:
            text += " Plugins that failed to load: " + "; ".join(map(str, self.broken)) + "."
        return text


_default_registry: Optional[Registry] = None


def default_registry() -> Registry:
    """The process-wide registry, created (and entry points loaded) on first use."""
    global _default_registry
    if _default_registry is None:
        _default_registry = Registry()
    return _default_registry


def register_plugin(plugin: Any, name: Optional[str] = None) -> PluginInfo:
    """Register a plugin object with the process-wide registry at run time."""
    return default_registry().register_plugin(plugin, name=name)
