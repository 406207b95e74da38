"""The demo exams run end to end: simulated candidates through kz-demo and ua-demo."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from engine.resources import bundled_banks_dir
from engine.simulate import simulate
from tests.e2e.conftest import Running


@pytest.fixture
async def demo(start_server: Callable[..., Awaitable[Running]]) -> Running:
    banks = bundled_banks_dir()
    return await start_server(banks_dir=banks, exams_dir=banks / "exams", demo=True)


@pytest.mark.parametrize(("exam_id", "parts"), [("kz-demo", 1), ("ua-demo", 2)])
async def test_simulated_candidates_complete_a_demo_exam(
    demo: Running, exam_id: str, parts: int
) -> None:
    summary = await simulate(demo.url, exam_id, 8, seed=3)
    assert summary.errors == 0, summary.error_codes
    assert (summary.sittings, summary.completed) == (8 * parts, 8 * parts)
    assert summary.answers_lost == 0
    assert summary.answers_acked == summary.answers_sent > 0
    expected = {"kz-demo": 8 * 120, "ua-demo": 8 * (100 + 90)}[exam_id]
    assert summary.answers_sent == expected
    assert summary.proctor_actions == 2 * 8 * parts, "identity confirmed and admitted, each"
    assert summary.fixation_chunks_acked == summary.fixation_chunks_sent >= 8 * parts


async def test_the_demo_roster_is_off_outside_demo_mode(running: Running) -> None:
    import urllib.error
    import urllib.request

    url = f"{running.url}/api/v1/demo/roster?exam=t-exam"
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, url)
    assert refused.value.code == 404
