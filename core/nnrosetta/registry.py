"""Plugin discovery and model -> adapter resolution.

Discovery order, step by step:
1. Unless ``NNROSETTA_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value, every entry
   point in the group ``nnrosetta`` of the installed distributions is imported
   (``NNROSETTA_PLUGINS=a,b`` limits that to the named entry points).
2. Objects passed to `register_plugin` at run time are added.
3. Before a plugin is registered its hooks are checked: a hook name that matches
   no specification, a hook without ``@hookimpl``, a wrong argument name, or a
   ``NNROSETTA_CONTRACT`` (or ``nnrosetta`` requirement) this core does not
   implement marks that plugin broken, with what to do.
4. Each plugin's ``register_adapters`` hook is called on its own; an import error,
   a raising hook or a malformed adapter marks that plugin broken (reported by
   ``nnrosetta adapters``) and the others keep working. An adapter name declared
   by two plugins serves neither (an `AdapterConflictError` naming both when it
   is asked for), whatever the install order.

Resolution: an explicit adapter wins; else the adapter claiming the config's
``model_type``; else one claiming the model class. The family declaration is then
merged with that type's `Variant` (`Adapter.for_type`). Two claims of equal priority
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
from .errors import AdapterConflictError, InvalidAdapterError, PluginLoadError, UnsupportedArchitectureError

ENTRY_POINT_GROUP = "nnrosetta"
DISABLE_AUTOLOAD_ENV = "NNROSETTA_DISABLE_PLUGIN_AUTOLOAD"
ONLY_PLUGINS_ENV = "NNROSETTA_PLUGINS"
#: Entry points naming the conformance checks an adapter may declare known broken.
CHECK_NAMES_GROUP = "nnrosetta.check_names"


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
        #: adapter name -> the plugins that each declared it; none of them is served.
        self.name_conflicts: dict[str, list[str]] = {}
        #: names in NNROSETTA_PLUGINS that matched no installed entry point.
        self.unmatched_plugin_names: list[str] = []
        self._entry_points_loaded = False
        self._adapters: Optional[dict[str, Adapter]] = None
        self._check_names: Optional[frozenset[str]] = None

    # -- plugins -------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Import every plugin published under the ``nnrosetta`` entry-point group, once."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        if not self.autoload:
            return
        only = {name.strip() for name in os.environ.get(ONLY_PLUGINS_ENV, "").split(",") if name.strip()}
        found = self._entry_points(ENTRY_POINT_GROUP)
        self.unmatched_plugin_names = sorted(only - {entry_point.name for entry_point in found})
        for entry_point in found:
            if only and entry_point.name not in only:
                continue
            dist = getattr(entry_point, "dist", None)
            info = PluginInfo(entry_point.name, dist.name if dist is not None else "?", dist.version if dist is not None else "?")
            try:
                plugin = entry_point.load()
            except Exception as error:  # noqa: BLE001 - a broken plugin must not break the others
                self._mark_broken(info, f"import of entry point {entry_point.value!r} failed: {type(error).__name__}: {error}")
                continue
            problem = _contract_problem(plugin, dist, required=True)
            if problem is not None:
                self._mark_broken(info, problem)
                continue
            self._add(plugin, info)

    def _entry_points(self, group: str) -> list[EntryPoint]:
        if self.search_path is None:
            return list(entry_points(group=group))
        return [
            entry_point
            for dist in distributions(path=self.search_path)
            for entry_point in dist.entry_points
            if entry_point.group == group
        ]

    def _mark_broken(self, info: PluginInfo, error: str) -> None:
        self.broken.append(BrokenPlugin(info.name, info.distribution, info.version, error))

    def register_plugin(self, plugin: Any, name: Optional[str] = None) -> PluginInfo:
        """Register a plugin object at run time (a notebook, code not yet packaged).

        Its hooks and adapters are validated at once: a malformed one raises here.
        A run-time plugin may omit ``NNROSETTA_CONTRACT``; one that declares another
        contract is refused.
        """
        self.load_entry_points()
        plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if plugin_name in self.plugins:
            raise AdapterConflictError(
                f"a plugin named {plugin_name!r} is already registered (from {self.plugins[plugin_name].label}); "
                f"register the new one under another name: register_plugin(obj, name=...)."
            )
        info = PluginInfo(plugin_name, "<run-time>", "")
        problem = _contract_problem(plugin, None, required=False)
        if problem is not None:
            raise PluginLoadError(f"plugin {plugin_name!r}: {problem}")
        before = len(self.broken)
        self._add(plugin, info)
        self._adapters = None
        self.adapters()
        problems = [b for b in self.broken[before:] if b.name == plugin_name]
        problems += [b for b in self.broken if b.name == plugin_name and b not in problems]
        if problems:
            if plugin_name in self.plugins:
                if self.manager.has_plugin(plugin_name):
                    self.manager.unregister(name=plugin_name)
                self.plugins.pop(plugin_name, None)
            for problem_entry in problems:
                self.broken.remove(problem_entry)
            self._adapters = None
            error = problems[0].error
            raise (InvalidAdapterError if "adapter" in error else PluginLoadError)(error)
        return info

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        """Register ``plugin`` after checking its hooks; a faulty one is marked broken, never raised."""
        problem = _hook_problem(self.manager, plugin)
        if problem is not None:
            self._mark_broken(info, problem)
            return
        try:
            self.manager.register(plugin, name=info.name)
        except pluggy.PluginValidationError as error:
            self._mark_broken(info, f"{error}. Hook arguments must be named as in the specification: "
                                    f"register_adapters(register).")
            return
        except ValueError as error:  # a plugin object registered twice under two names
            self._mark_broken(info, f"could not be registered: {error}")
            return
        self.plugins[info.name] = info
        self._adapters = None

    # -- adapters ------------------------------------------------------------

    def check_names(self) -> Optional[frozenset[str]]:
        """Conformance checks an adapter's ``known_broken`` may name (None when no suite is installed)."""
        if self._check_names is None:
            names: set[str] = set()
            for entry_point in self._entry_points(CHECK_NAMES_GROUP):
                try:
                    names.update(entry_point.load())
                except Exception:  # noqa: BLE001 - a broken suite only loses this validation
                    continue
            self._check_names = frozenset(names)
        return self._check_names or None

    def adapters(self) -> list[Adapter]:
        """Every valid adapter of every working plugin, in registration order."""
        self.load_entry_points()
        if self._adapters is None:
            self._adapters = self._collect()
        return list(self._adapters.values())

    def _collect(self) -> dict[str, Adapter]:
        check_names = self.check_names()
        per_plugin: list[tuple[PluginInfo, list[Adapter]]] = []
        for implementation in self.manager.hook.register_adapters.get_hookimpls():
            info = self.plugins[implementation.plugin_name]
            if any(b.name == info.name for b in self.broken):
                continue
            declared: list[Adapter] = []

            def register(adapter: Adapter, _declared: list = declared, _plugin: str = info.label) -> None:
                if not isinstance(adapter, Adapter):
                    raise InvalidAdapterError(
                        f"plugin {_plugin!r} passed {type(adapter).__name__} {adapter!r:.80} to register(); "
                        f"expected an nnrosetta.Adapter."
                    )
                adapter.validate(_plugin, check_names)
                if any(a.name == adapter.name for a in _declared):
                    raise AdapterConflictError(
                        f"plugin {_plugin!r} registers adapter name {adapter.name!r} twice; rename one adapter."
                    )
                _declared.append(adapter.with_plugin(_plugin))

            try:
                implementation.function(register=register)
            except Exception as error:  # noqa: BLE001 - attribute the failure to its plugin
                self._mark_broken(info, f"register_adapters raised {type(error).__name__}: {error}")
                continue
            per_plugin.append((info, declared))
        # A name declared by two plugins serves neither: which one survived would depend on install order.
        owners: dict[str, list[str]] = {}
        for info, declared in per_plugin:
            for adapter in declared:
                owners.setdefault(adapter.name, []).append(adapter.plugin)
        self.name_conflicts = {name: plugins for name, plugins in owners.items() if len(plugins) > 1}
        return {
            adapter.name: adapter
            for _, declared in per_plugin
            for adapter in declared
            if adapter.name not in self.name_conflicts
        }

    def _name_conflict(self, name: str) -> AdapterConflictError:
        return AdapterConflictError(
            f"adapter name {name!r} is declared by {' and '.join(repr(p) for p in self.name_conflicts[name])}; "
            f"adapter names must be unique, so neither is served. Uninstall one of the plugins, or ask its "
            f"author to rename the adapter."
        )

    def adapter(self, name: str) -> Adapter:
        """The adapter with this name, or an error listing the installed ones."""
        for adapter in self.adapters():
            if adapter.name == name:
                return adapter
        if name in self.name_conflicts:
            raise self._name_conflict(name)
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
        config: Any = None,
    ) -> Adapter:
        """Pick the adapter for a model (explicit > claimed model_type > claimed class), merged for its type.

        With ``config`` and no explicit choice, a claimant that refuses the config gives way to
        the next one (by priority) that accepts it: several layouts of a family may share one
        model_type, each served by its own adapter, and a model loaded by path should get the
        adapter that serves its layout, not a refusal that names it.
        """
        chosen = self._resolve_family(model_type, class_names, adapter).for_type(model_type)
        if adapter is not None or config is None or not chosen.refusal(config):
            return chosen
        for other in self.claims().get(model_type, []):
            if other.name != chosen.name:
                candidate = other.for_type(model_type)
                if not candidate.refusal(config):
                    return candidate
        return chosen

    def _resolve_family(
        self,
        model_type: Optional[str],
        class_names: Iterable[str],
        adapter: Union[Adapter, str, None],
    ) -> Adapter:
        if isinstance(adapter, Adapter):
            adapter.validate(adapter.plugin or "<explicit>", self.check_names())
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
            f"(from a clone of nnrosetta: pip install ./plugins/<family>), register one at run time with "
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
            else "No adapters are installed (install a plugin such as ./plugins/llama)."
        )
        if not self.autoload:
            text += f" Plugin autoloading is off ({DISABLE_AUTOLOAD_ENV} is set)."
        if self.unmatched_plugin_names:
            text += (
                f" {ONLY_PLUGINS_ENV} names {', '.join(self.unmatched_plugin_names)}, which match no installed "
                f"plugin (installed: {', '.join(e.name for e in self._entry_points(ENTRY_POINT_GROUP)) or 'none'})."
            )
        if self.broken:
            text += " Plugins that failed to load: " + "; ".join(map(str, self.broken)) + "."
        if self.name_conflicts:
            text += " Adapter names declared twice (not served): " + "; ".join(
                f"{name} by {' and '.join(plugins)}" for name, plugins in self.name_conflicts.items()
            ) + "."
        return text


def _hook_problem(manager: pluggy.PluginManager, plugin: Any) -> Optional[str]:
    """What is wrong with a plugin's hooks before pluggy sees them (None when they look right).

    pluggy accepts a module whose hook name is misspelt or lacks ``@hookimpl``
    silently, with zero adapters; both are mistakes an author must hear about.
    """
    valid = ", ".join(hookspecs.HOOK_NAMES)
    marked = [name for name in dir(plugin) if not name.startswith("_") and manager.parse_hookimpl_opts(plugin, name) is not None]
    unknown = [name for name in marked if name not in hookspecs.HOOK_NAMES]
    if unknown:
        return (
            f"implements {', '.join(unknown)}, which matches no nnrosetta hook specification; "
            f"valid hook names: {valid}. Rename the function."
        )
    unmarked = [name for name in hookspecs.HOOK_NAMES if name not in marked and callable(getattr(plugin, name, None))]
    if unmarked:
        return (
            f"defines {', '.join(unmarked)} without the @nnrosetta.hookimpl marker, so it would never be "
            f"called. Decorate it: `@nnrosetta.hookimpl`."
        )
    if not marked:
        return f"implements no nnrosetta hook (valid hook names: {valid}); mark one with @nnrosetta.hookimpl."
    return None


def _contract_problem(plugin: Any, dist: Any, required: bool) -> Optional[str]:
    """Why a plugin was written for another contract or core release (None when it fits)."""
    declared = getattr(plugin, hookspecs.CONTRACT_ATTRIBUTE, None)
    if declared is None and required:
        return (
            f"declares no contract version; this nnrosetta implements contract {hookspecs.CONTRACT_VERSION}. "
            f"Add `{hookspecs.CONTRACT_ATTRIBUTE} = {hookspecs.CONTRACT_VERSION}` to the plugin module once it "
            f"follows that contract (see the README, 'Writing an adapter')."
        )
    if declared is not None and declared != hookspecs.CONTRACT_VERSION:
        return (
            f"was written for adapter contract {declared!r}, but this nnrosetta implements contract "
            f"{hookspecs.CONTRACT_VERSION}. Install a release of the plugin written for contract "
            f"{hookspecs.CONTRACT_VERSION}, or the nnrosetta release the plugin was written for."
        )
    requirement = _core_requirement(dist)
    if requirement is not None:
        from importlib.metadata import version as installed_version

        from packaging.version import Version

        core = installed_version("nnrosetta") if _installed("nnrosetta") else None
        if core is not None and requirement.specifier and not requirement.specifier.contains(Version(core), prereleases=True):
            return (
                f"requires {requirement}, but nnrosetta {core} is installed. Install a nnrosetta release "
                f"matching {requirement.specifier}, or a release of the plugin built for nnrosetta {core}."
            )
    return None


def _core_requirement(dist: Any) -> Any:
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    for line in dist.requires or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.name.lower() == "nnrosetta" and not requirement.marker:
            return requirement
    return None


def _installed(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


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
