"""The plugin manager: built-in plugins first, then the entry points of group ``examhall``.

It also collects the schemes plugins register and guards every call into them: a plugin that
raises, returns nonsense or clashes by name is reported as a `PluginError` naming it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from types import ModuleType

import pluggy

from engine import hookspecs
from engine.exceptions import PluginError
from engine.model import Exam, Part
from engine.schemes import PartResult, Scheme
from engine.scoring import ResponseMatrix

BUILTIN_PLUGINS = ("plugins.kz_prosecutor", "plugins.ua_prosecutor")


def create_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_PLUGINS, entry_points: bool = True
) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in builtins:
        module: ModuleType = importlib.import_module(name)
        manager.register(module, name=name)
    if entry_points:
        manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    return manager


class SchemeRegistry:
    """The schemes the plugins registered, by name, each remembered with its plugin."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._schemes: dict[str, tuple[Scheme, str]] = {}
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
            other = self._schemes[name][1]
            raise PluginError(plugin_name, f"scheme {name!r} is already registered by {other!r}")
        self._schemes[name] = (scheme, plugin_name)

    def names(self) -> list[str]:
        return sorted(self._schemes)

    def get(self, name: str) -> Scheme:
        try:
            return self._schemes[name][0]
        except KeyError:
            raise PluginError("?", f"no plugin registers a scheme named {name!r}") from None

    def plugin_of(self, name: str) -> str:
        return self._schemes[name][1]

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """Score through the exam's scheme and refuse anything it should not have returned."""
        scheme = self.get(exam.scheme)
        plugin = self.plugin_of(exam.scheme)
        try:
            results = scheme.score_part(exam, part, matrix)
        except Exception as error:
            raise PluginError(plugin, f"scheme {scheme.name!r} raised {error!r}") from error
        check_results(plugin, part, matrix, results)
        return results


def check_results(plugin: str, part: Part, matrix: ResponseMatrix, results: object) -> None:
    if not isinstance(results, list) or not all(isinstance(r, PartResult) for r in results):
        raise PluginError(plugin, "score_part must return a list of PartResult")
    returned = [result.candidate_id for result in results]
    if returned != list(matrix.candidate_ids):
        missing = sorted(set(matrix.candidate_ids) - set(returned))
        extra = sorted(set(returned) - set(matrix.candidate_ids))
        raise PluginError(
            plugin,
            f"results do not match the candidates scored (missing {missing}, unexpected {extra})",
        )
    for result in results:
        for label, value in (("score", result.score), ("max_score", result.max_score)):
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise PluginError(
                    plugin, f"{label} {value!r} for {result.candidate_id} is not a number"
                )
        if not 0 <= result.score <= result.max_score:
            raise PluginError(
                plugin,
                f"score {result.score} for {result.candidate_id} is outside 0..{result.max_score}",
            )
        if result.part_id != part.id:
            raise PluginError(plugin, f"result for part {result.part_id!r}, expected {part.id!r}")
