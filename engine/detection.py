"""Irregularity detectors: what turns the page's signals and loudness into notes for a proctor.

A detector is a plugin (hook `examhall_register_detectors`), so an integrator can add one the
same way schemes are added. A finding is a signal for a person to judge, never a verdict: the
engine only records it and raises the sitting's attention on the proctor's screen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pluggy

from engine.exceptions import PluginError
from engine.hookspecs import hookspec


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a proctor should look at; `severity` 1 (note) … 3 (look now)."""

    kind: str
    detail: str
    severity: int = 2


class Detector:
    """Base class of a detector. Override what you watch; `state` is per sitting."""

    name: ClassVar[str]

    def on_signal(self, state: dict[str, Any], kind: str, detail: str) -> list[Finding]:
        return []

    def on_levels(
        self,
        state: dict[str, Any],
        start: float,
        interval_s: float,
        values: npt.NDArray[np.float64],
    ) -> list[Finding]:
        return []


@hookspec
def examhall_register_detectors(register: Callable[[Detector], None]) -> None:
    """Register irregularity detectors by calling ``register(DetectorInstance())``."""


class DetectorRegistry:
    """The registered detectors; each call guarded so a broken plugin is named, not trusted."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._detectors: list[tuple[Detector, str]] = []
        self._signal_watchers: list[tuple[Detector, str]] = []
        """The detectors that override `on_signal`; the others are not called for signals."""
        self._level_watchers: list[tuple[Detector, str]] = []
        """…and `on_levels`: levels frames come 2,000 a second at 10,000 sittings."""
        for implementation in manager.hook.examhall_register_detectors.get_hookimpls():
            plugin = implementation.plugin_name
            implementation.function(register=lambda d, p=plugin: self._add(d, p))

    def _add(self, detector: object, plugin: str) -> None:
        if not isinstance(detector, Detector) or not getattr(detector, "name", ""):
            raise PluginError(plugin, f"registered {detector!r}, which is not a named Detector")
        if any(d.name == detector.name for d, _ in self._detectors):
            raise PluginError(plugin, f"detector {detector.name!r} is already registered")
        self._detectors.append((detector, plugin))
        if type(detector).on_signal is not Detector.on_signal:
            self._signal_watchers.append((detector, plugin))
        if type(detector).on_levels is not Detector.on_levels:
            self._level_watchers.append((detector, plugin))

    @property
    def names(self) -> list[str]:
        return [detector.name for detector, _ in self._detectors]

    def signal(
        self, states: dict[str, dict[str, Any]], kind: str, detail: str
    ) -> list[tuple[str, Finding]]:
        return self._run(states, lambda d, s: d.on_signal(s, kind, detail), self._signal_watchers)

    def levels(
        self,
        states: dict[str, dict[str, Any]],
        start: float,
        interval_s: float,
        values: list[float],
    ) -> list[tuple[str, Finding]]:
        series = np.array(values, dtype=np.float64)
        np.minimum(np.maximum(series, 0.0, out=series), 1.0, out=series)  # np.clip costs 3x
        return self._run(
            states, lambda d, s: d.on_levels(s, start, interval_s, series), self._level_watchers
        )

    def _run(
        self,
        states: dict[str, dict[str, Any]],
        call: Callable[[Detector, dict[str, Any]], list[Finding]],
        watchers: list[tuple[Detector, str]],
    ) -> list[tuple[str, Finding]]:
        found: list[tuple[str, Finding]] = []
        for detector, plugin in watchers:
            try:
                findings = call(detector, states.setdefault(detector.name, {}))
            except Exception as error:
                raise PluginError(plugin, f"detector {detector.name!r} raised {error!r}") from error
            if type(findings) is list and not findings:
                continue
            if not isinstance(findings, list) or not all(isinstance(f, Finding) for f in findings):
                raise PluginError(
                    plugin, f"detector {detector.name!r} must return a list of Finding"
                )
            found += [(detector.name, finding) for finding in findings]
        return found


def with_detectors(manager: pluggy.PluginManager) -> pluggy.PluginManager:
    """`manager` with the detector hook and the built-in detectors (plugins/detectors.py), as
    `examhall serve` runs them in the serving process and in its media process."""
    from plugins import detectors as builtin_detectors  # it imports this module

    manager.add_hookspecs(sys.modules[__name__])
    if not manager.has_plugin("plugins.detectors"):
        manager.register(builtin_detectors, name="plugins.detectors")
    return manager
