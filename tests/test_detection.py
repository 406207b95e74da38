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


def test_an_empty_frame_finds_nothing_and_keeps_the_history() -> None:
    talk = TalkDetector()
    state: dict[str, Any] = {}
    talk.on_levels(state, 0.0, 0.1, levels((0.01, 50)))
    assert talk.on_levels(state, 5.0, 0.1, np.empty(0)) == []
    assert state["held"] == 50


def test_a_noisy_room_raises_the_bar() -> None:
    talk = TalkDetector()
    state: dict[str, Any] = {}
    talk.on_levels(state, 0.0, 0.1, levels((0.1, 300)))
    hum = levels((0.1, 20), (0.2, 30), (0.1, 20))
    assert talk.on_levels(state, 30.0, 0.1, hum) == [], "twice the room's level is not speech"
    loud = levels((0.1, 20), (0.6, 30), (0.1, 20))
    assert len(talk.on_levels(state, 40.0, 0.1, loud)) == 1


def test_the_floor_is_the_last_values_however_the_frames_were_cut() -> None:
    """The room's level comes from exactly the last `history` values, across frame sizes."""
    rng = np.random.default_rng(7)
    talk = TalkDetector()
    state: dict[str, Any] = {}
    heard: list[np.ndarray] = []
    checked = 0
    for _ in range(120):
        quiet = rng.normal(0.012, 0.002, int(rng.integers(1, 80))).clip(0.0, 1.0)
        frame = quiet if rng.random() < 0.7 else np.concatenate([quiet, np.full(30, 0.4)])
        heard.append(frame)
        findings = talk.on_levels(state, 0.0, 0.1, frame)
        if frame.max() > talk.min_level:
            floor = float(np.percentile(np.concatenate(heard)[-talk.history :], 20))
            (finding,) = findings
            assert f"room {floor:.2f}" in finding.detail
            checked += 1
        else:
            assert findings == []
    assert checked > 20
    assert sum(f.size for f in state["history"]) - state["history"][0].size < talk.history


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


class Counting(Detector):
    """Watches signals only, and counts the calls it gets."""

    name: ClassVar[str] = "counting"
    calls = 0

    def on_signal(self, state: dict[str, Any], kind: str, detail: str) -> list[Finding]:
        Counting.calls += 1
        return []


class ArrayLiar(Detector):
    name: ClassVar[str] = "array-liar"

    def on_levels(
        self, state: dict[str, Any], start: float, interval_s: float, values: Any
    ) -> list[Finding]:
        return values  # type: ignore[no-any-return]


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


def test_levels_go_only_to_detectors_that_watch_them() -> None:
    class Plugin:
        @hookimpl
        def examhall_register_detectors(self, register: Any) -> None:
            register(Counting())

    registry = DetectorRegistry(manager_with(builtin, Plugin()))
    Counting.calls = 0
    frame = [0.01] * 10 + [0.5] * 30
    assert [f.kind for _, f in registry.levels({}, 0.0, 0.1, frame)] == ["talk"]
    assert Counting.calls == 0
    registry.signal({}, "copy", "")
    assert Counting.calls == 1


def test_levels_are_clipped_to_the_unit_range() -> None:
    registry = DetectorRegistry(manager_with(builtin))
    ((_, finding),) = registry.levels({}, 0.0, 0.1, [-3.0] * 10 + [7.0] * 30)
    assert "level 1.00, room 0.00" in finding.detail


def test_a_detector_that_returns_an_array_is_named() -> None:
    class Plugin:
        @hookimpl
        def examhall_register_detectors(self, register: Any) -> None:
            register(ArrayLiar())

    registry = DetectorRegistry(manager_with(Plugin()))
    with pytest.raises(PluginError, match="'array-liar' must return a list of Finding"):
        registry.levels({}, 0.0, 0.1, [0.1, 0.2])


def test_a_name_clash_is_refused() -> None:
    with pytest.raises(PluginError, match="'talk' is already registered"):
        DetectorRegistry(manager_with(builtin, ClashPlugin()))
