"""Built-in irregularity detectors: the page's own signals, and talk heard in the room (KZ-4)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from engine import hookimpl
from engine.detection import Detector, Finding

SIGNAL_FINDINGS: dict[str, tuple[str, int]] = {
    "page-hidden": ("the test page was hidden (another tab or window)", 3),
    "focus-lost": ("the test page lost focus", 2),
    "fullscreen-exit": ("full screen was left", 2),
    "copy": ("text was copied", 3),
    "paste": ("text was pasted", 3),
    "second-screen": ("a second screen is connected", 3),
    "camera-stopped": ("the camera stopped", 3),
    "microphone-stopped": ("the microphone stopped", 3),
    "media-error": ("recording failed on the candidate's device", 2),
    "no-devices": ("sitting without camera or microphone (the exam allows it)", 2),
}
"""Signals worth a proctor's look; `page-visible`, `focus-back`, `fullscreen-enter` are not."""


class PageSignals(Detector):
    name: ClassVar[str] = "page-signals"

    def on_signal(self, state: dict[str, Any], kind: str, detail: str) -> list[Finding]:
        if kind not in SIGNAL_FINDINGS:
            return []
        text, severity = SIGNAL_FINDINGS[kind]
        return [Finding(kind, f"{text}: {detail}" if detail else text, severity)]


class TalkDetector(Detector):
    """Sustained speech-like loudness: well above the room's own noise for a while.

    The noise floor is a low percentile of the recent levels, so a noisy room does not flag
    everyone; speech must last `min_speech_s` (short gaps between words allowed) to count.
    The recent levels are kept as the frames that came (`history` values at least), and put
    together only for a frame loud enough to need the floor.
    """

    name: ClassVar[str] = "talk"
    min_speech_s = 2.0
    max_gap_s = 0.4
    floor_over = 4.0
    min_level = 0.04
    history = 600

    def on_levels(
        self,
        state: dict[str, Any],
        start: float,
        interval_s: float,
        values: npt.NDArray[np.float64],
    ) -> list[Finding]:
        history: deque[npt.NDArray[np.float64]] = state.setdefault("history", deque())
        history.append(values)
        held = state.get("held", 0) + values.size
        while held - history[0].size >= self.history:
            held -= history.popleft().size
        state["held"] = held
        if values.size == 0 or float(values.max()) <= self.min_level:
            # A quiet frame (most of them): nothing in it can pass a threshold of at least
            # min_level, so the room's floor need not be worked out.
            return []
        recent = np.concatenate(history)[-self.history :]
        floor = _percentile(recent, 0.2)
        threshold = max(self.min_level, floor * self.floor_over)
        loud = values > threshold
        findings = []
        for first, last in _runs(loud, round(self.max_gap_s / interval_s)):
            duration = (last - first + 1) * interval_s
            if duration >= self.min_speech_s:
                findings.append(
                    Finding(
                        "talk",
                        f"speech-like sound for {duration:.1f} s "
                        f"(level {float(values[first : last + 1].mean()):.2f}, room {floor:.2f})",
                        2,
                    )
                )
        return findings


def _runs(mask: npt.NDArray[np.bool_], max_gap: int) -> list[tuple[int, int]]:
    """Index ranges of True in `mask`, joining runs separated by at most `max_gap` False."""
    indices = np.flatnonzero(mask)
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > max_gap + 1)
    starts = np.concatenate([[indices[0]], indices[breaks + 1]])
    ends = np.concatenate([indices[breaks], [indices[-1]]])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


@hookimpl
def examhall_register_detectors(register: Callable[[Detector], None]) -> None:
    register(PageSignals())
    register(TalkDetector())


def _percentile(values: npt.NDArray[np.float64], fraction: float) -> float:
    """`np.percentile` (linear interpolation) by a partial sort: a tenth of its cost here.

    It runs for every levels frame of every sitting, 2,000 times a second at 10,000 sittings.
    """
    position = fraction * (values.size - 1)
    below = int(position)
    above = min(below + 1, values.size - 1)
    part = np.partition(values, (below, above))
    low, high = float(part[below]), float(part[above])
    return low + (position - below) * (high - low)
