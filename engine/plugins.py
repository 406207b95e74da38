"""The plugin manager: built-in plugins first, then the entry points of group ``examhall``.

It also collects the schemes plugins register. Every scheme is handed out wrapped in a
`CheckedScheme`, so a plugin that raises, returns nonsense or clashes by name is reported as a
`PluginError` naming it, never silently trusted.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable
from types import ModuleType

import pluggy

from engine import hookspecs
from engine.checked_scheme import CheckedScheme
from engine.exceptions import ConfigError, PluginError
from engine.model import Exam, Part
from engine.schemes import PartResult, Scheme
from engine.scoring import ResponseMatrix

BUILTIN_PLUGINS = ("plugins.kz_prosecutor", "plugins.ua_prosecutor")


def create_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_PLUGINS, entry_points: bool = True
) -> pluggy.PluginManager:
    """A manager with the hook specs, the built-in plugins and (unless off) installed ones."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in builtins:
        module: ModuleType = importlib.import_module(name)
        manager.register(module, name=name)
    if entry_points:
        load_entry_points(manager)
    return manager


def load_entry_points(manager: pluggy.PluginManager) -> list[str]:
    """Register every installed ``examhall`` entry point; a broken one is named in the error.

    Returns the names registered. An entry point whose object is already registered (the same
    module listed twice) is skipped, as pluggy's own loader does.
    """
    registered = []
    for entry_point in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        distribution = entry_point.dist.name if entry_point.dist else "?"
        label = f"{entry_point.name} ({distribution})"
        if manager.has_plugin(entry_point.name) or manager.is_blocked(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as error:
            raise PluginError(label, f"cannot be imported: {error!r}") from error
        if manager.is_registered(plugin):
            continue
        try:
            manager.register(plugin, name=entry_point.name)
        except Exception as error:
            raise PluginError(label, f"does not fit the hook specs: {error}") from error
        registered.append(entry_point.name)
    return registered


class SchemeRegistry:
    """The schemes the plugins registered, by name, each remembered with its plugin."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._schemes: dict[str, CheckedScheme] = {}
        for implementation in manager.hook.examhall_register_schemes.get_hookimpls():
            plugin_name = implementation.plugin_name
            try:
                implementation.function(register=lambda s, p=plugin_name: self._add(s, p))
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(
                    plugin_name, f"failed to register its schemes: {error!r}"
                ) from error

    def _add(self, scheme: object, plugin_name: str) -> None:
        if not isinstance(scheme, Scheme):
            raise PluginError(plugin_name, f"registered {scheme!r}, which is not a Scheme")
        name = getattr(scheme, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(plugin_name, "registered a scheme without a name")
        if name in self._schemes:
            other = self._schemes[name].plugin
            raise PluginError(plugin_name, f"scheme {name!r} is already registered by {other!r}")
        self._schemes[name] = CheckedScheme(scheme, plugin_name)

    def names(self) -> list[str]:
        return sorted(self._schemes)

    def scheme(self, name: str) -> CheckedScheme:
        """The scheme called `name`, guarded; `ConfigError` when no plugin registers it."""
        try:
            return self._schemes[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(
                f"no plugin registers a scheme named {name!r} (registered: {known})"
            ) from None

    def for_exam(self, exam: Exam) -> CheckedScheme:
        return self.scheme(exam.scheme)

    def get(self, name: str) -> Scheme:
        """The plugin's own scheme object, unguarded: prefer `scheme(name)`."""
        return self.scheme(name).scheme

    def plugin_of(self, name: str) -> str:
        return self.scheme(name).plugin

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """Score through the exam's scheme and refuse anything it should not have returned."""
        return self.for_exam(exam).score_part(exam, part, matrix)
