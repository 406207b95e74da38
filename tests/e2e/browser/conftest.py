"""Browser fixtures: Debian's chromium driven by Playwright, against the real server on 127.0.0.1.

The server runs in the test's event loop (tests/e2e/conftest.py `start_server`) and the browser is a
separate process, so the async Playwright API drives it from the same loop. No browser is
downloaded: `executable_path` is the system chromium that ./scripts/test installs.
"""

from __future__ import annotations

import os
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from engine.resources import bundled_banks_dir, web_client_dir
from tests.e2e.browser.catalog import write_browser_exams
from tests.e2e.conftest import Running

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def _missing_setup() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium"
    if not (web_client_dir() / "node_modules" / "@msgpack" / "msgpack").is_dir():
        return "clients/web/node_modules is missing: ./scripts/test runs npm ci for it"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    missing = _missing_setup()
    if missing:
        # Under CI a missing browser is a broken set-up, not a reason to pass quietly.
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser_without_media_consent() -> AsyncIterator[Browser]:
    """Chromium without the flag that says yes to camera and microphone: headless, it says no,
    as a candidate who refuses would."""
    missing = _missing_setup()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    args = [arg for arg in LAUNCH_ARGS if arg != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser_hearing_speech(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays a room: 3 s of quiet, then 4 s of a voice-loud
    warble, over and over (a WAV file Chromium captures instead of its usual beep)."""
    missing = _missing_setup()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    sound = tmp_path / "room-with-speech.wav"
    write_room_with_speech(sound)
    args = [*LAUNCH_ARGS, f"--use-file-for-fake-audio-capture={sound}"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield launched
        finally:
            await launched.close()


def write_room_with_speech(path: Path, rate: int = 48_000) -> None:
    """16-bit mono PCM: quiet noise (RMS about 0.003), then a 200–300 Hz warble at 0.35."""
    rng = np.random.default_rng(5)
    quiet = rng.normal(0.0, 0.003, 3 * rate)
    t = np.arange(4 * rate) / rate
    voice = 0.35 * np.sin(2 * np.pi * (250 + 50 * np.sin(2 * np.pi * 3 * t)) * t)
    samples = np.clip(np.concatenate([quiet, voice]), -1.0, 1.0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())


@pytest.fixture
def new_context(browser: Browser) -> Callable[..., Awaitable[BrowserContext]]:
    """A fresh browser profile: 1280×720 unless told otherwise, with a locale."""

    async def make(locale: str = "en-GB", width: int = 1280, height: int = 720) -> BrowserContext:
        context = await browser.new_context(
            viewport={"width": width, "height": height}, locale=locale
        )
        context.set_default_timeout(15_000)
        return context

    return make


@pytest.fixture
async def site(start_server: Callable[..., Awaitable[Running]], tmp_path: Path) -> Running:
    """The real server with the browser exams on the bundled demo banks."""
    return await start_server(
        banks_dir=bundled_banks_dir(), exams_dir=write_browser_exams(tmp_path / "site")
    )


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
