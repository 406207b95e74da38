"""Detectors: the talk detector on synthetic loudness, the registry's guard on bad plugins."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pluggy
import pytest

from engine import detection, hookimpl, hookspecs
from engine.detection import Detector, DetectorRegistry, Finding
from engine.exceptions import PluginError
from plugins import detectors as builtin
from plugins.detectors import TalkDetector


def levels(*segments: tuple[float, int]) -> np.ndarray:
    return np.concatenate([np.full(count, level) for level, count in segments])


def test_sustained_speech_is_found_and_short_noise_is_not() -> None:
    talk = TalkDetector()
    state: dict[str, Any] = {}
    assert talk.on_levels(state, 0.0, 0.1, levels((0.01, 50))) == []
    cough = levels((0.01, 20), (0.5, 5), (0.01, 20))
    assert talk.on_levels(state, 5.0, 0.1, cough) == []
    speech = levels((0.01, 10), (0.3, 12), (0.0, 2), (0.3, 14), (0.01, 10))
    (finding,) = talk.on_levels(state, 10.0, 0.1, speech)
    assert finding.kind == "talk" and "2.8 s" in finding.detail


def test_a_noisy_room_raises_the_bar() -> None:
    talk = TalkDetector()
    state: dict[str, Any] = {}
    talk.on_levels(state, 0.0, 0.1, levels((0.1, 300)))
    hum = levels((0.1, 20), (0.2, 30), (0.1, 20))
    assert talk.on_levels(state, 30.0, 0.1, hum) == [], "twice the room's level is not speech"
    loud = levels((0.1, 20), (0.6, 30), (0.1, 20))
    assert len(talk.on_levels(state, 40.0, 0.1, loud)) == 1


def manager_with(*plugins: object) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(detection)
    for plugin in plugins:
        manager.register(plugin)
    return manager


@pytest.mark.parametrize("size", [1, 2, 3, 11, 599, 600])
def test_the_noise_floor_is_numpys_percentile(size: int) -> None:
    rng = np.random.default_rng(size)
    for _ in range(50):
        values = rng.random(size) * rng.choice([1e-3, 1.0, 50.0])
        expected = float(np.percentile(values, 20))
        assert builtin._percentile(values, 0.2) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_built_in_detectors_register() -> None:
    registry = DetectorRegistry(manager_with(builtin))
    assert registry.names == ["page-signals", "talk"]
    states: dict[str, dict[str, Any]] = {}
    assert [f.kind for _, f in registry.signal(states, "copy", "")] == ["copy"]
    assert registry.signal(states, "focus-back", "") == []


class Broken(Detector):
    name: ClassVar[str] = "broken"

    def on_signal(self, state: dict[str, Any], kind: str, detail: str) -> list[Finding]:
        raise ZeroDivisionError("oops")


class Liar(Detector):
    name: ClassVar[str] = "liar"

    def on_signal(self, state: dict[str, Any], kind: str, detail: str) -> list[Finding]:
        return ["not a finding"]  # type: ignore[list-item]


class BrokenPlugin:
    @hookimpl
    def examhall_register_detectors(self, register: Any) -> None:
        register(Broken())


class LiarPlugin:
    @hookimpl
    def examhall_register_detectors(self, register: Any) -> None:
        register(Liar())


class ClashPlugin:
    @hookimpl
    def examhall_register_detectors(self, register: Any) -> None:
        register(TalkDetector())


def test_a_detector_that_raises_is_named() -> None:
    registry = DetectorRegistry(manager_with(BrokenPlugin()))
    with pytest.raises(PluginError, match="detector 'broken' raised ZeroDivisionError"):
        registry.signal({}, "copy", "")


def test_a_detector_that_returns_nonsense_is_named() -> None:
    registry = DetectorRegistry(manager_with(LiarPlugin()))
    with pytest.raises(PluginError, match="must return a list of Finding"):
        registry.signal({}, "copy", "")


def test_a_name_clash_is_refused() -> None:
    with pytest.raises(PluginError, match="'talk' is already registered"):
        DetectorRegistry(manager_with(builtin, ClashPlugin()))
