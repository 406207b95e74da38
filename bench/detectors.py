"""The irregularity detectors on audio-levels frames, as the hall calls them for every frame.

At 10,000 sittings 2,000 frames arrive a second (5 s of levels every 5 s each), so a frame's
cost through `DetectorRegistry.levels` is paid 2,000 times a second on the event loop. The
frames are the exam-day generator's: a quiet room (bench/load.py `ROOM_LEVEL`, `ROOM_JITTER`)
with 2.5 s of speech in one frame of 100, which the talk detector must flag.

    python -m bench.detectors
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from bench.load import LEVELS_INTERVAL_MS, LEVELS_PER_FRAME, ROOM_JITTER, ROOM_LEVEL, SPEECH_SHARE
from engine import detection
from engine.detection import DetectorRegistry
from engine.plugins import create_plugin_manager
from plugins import detectors as builtin_detectors

SITTINGS = 200
"""Frames go round this many sittings, so each detector state holds a real history."""


def measure(frames: int = 20_000, *, seed: int = 3) -> dict[str, Any]:
    manager = create_plugin_manager(entry_points=False)
    manager.add_hookspecs(detection)
    manager.register(builtin_detectors, name="plugins.detectors")
    registry = DetectorRegistry(manager)
    rng = random.Random(seed)
    batch = []
    for _ in range(frames):
        values = [max(0.0, rng.gauss(ROOM_LEVEL, ROOM_JITTER)) for _ in range(LEVELS_PER_FRAME)]
        if rng.random() < SPEECH_SHARE:
            values[10:35] = [rng.uniform(0.2, 0.4) for _ in range(25)]
        batch.append(values)
    states: list[dict[str, dict[str, Any]]] = [{} for _ in range(SITTINGS)]
    interval_s = LEVELS_INTERVAL_MS / 1000
    started = time.perf_counter()
    flagged = 0
    for n, values in enumerate(batch):
        flagged += len(registry.levels(states[n % SITTINGS], 0.0, interval_s, values))
    elapsed = time.perf_counter() - started
    return {
        "frames": frames,
        "us_per_frame": round(elapsed / frames * 1e6, 2),
        "frames_flagged": flagged,
        "cores_at_10000_sittings": round(elapsed / frames * 2_000, 4),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
