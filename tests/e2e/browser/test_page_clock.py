"""The page's countdown (clients/web/js/clock.js) in Chromium: a figure that arrived late does not
raise it, a moved deadline does (docs/protocol.md 2.3; engine/countdown.py is the same rule)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import BrowserContext

from tests.e2e.conftest import Running

NewContext = Callable[..., Awaitable[BrowserContext]]

SCENARIO = """async () => {
  const { ServerClock } = await import("/static/js/clock.js");
  const clock = new ServerClock();
  const deadline = 1800000000.0;
  const seen = {};
  seen.first = clock.update(600000, "running", 0, deadline);
  seen.lateTaken = clock.update(600800, "running", 0, deadline);
  seen.afterLate = clock.remaining();
  seen.soonerTaken = clock.update(599000, "running", 0, deadline);
  seen.afterSooner = clock.remaining();
  seen.grantTaken = clock.update(700000, "running", 0, deadline + 100);
  seen.afterGrant = clock.remaining();
  seen.higherPongTaken = clock.offer(710000, "running", 50);
  seen.lowerPongTaken = clock.offer(690000, "running", 50);
  seen.afterPong = clock.remaining();
  seen.pauseTaken = clock.update(650000, "paused", 0, null);
  seen.paused = clock.remaining();
  seen.resumeTaken = clock.update(650000, "running", 0, deadline + 200);
  seen.afterResume = clock.remaining();
  return seen;
}"""


async def test_the_page_s_countdown_keeps_the_least_delayed_figure(
    site: Running, new_context: NewContext
) -> None:
    context = await new_context()
    page = await context.new_page()
    await page.goto(site.url + "/")
    seen = await page.evaluate(SCENARIO)
    await context.close()

    assert seen["first"] is True
    assert seen["lateTaken"] is False  # 0.8 s more than the kept figure: it was late
    assert 599_000 < seen["afterLate"] <= 600_000
    assert seen["soonerTaken"] is True
    assert 598_000 < seen["afterSooner"] <= 599_000
    assert seen["grantTaken"] is True  # a new deadline is taken even though it shows more
    assert 699_000 < seen["afterGrant"] <= 700_000
    assert seen["higherPongTaken"] is False
    assert seen["lowerPongTaken"] is True
    assert 688_950 < seen["afterPong"] <= 689_950  # less its age, half the round trip
    assert seen["pauseTaken"] is True
    assert seen["paused"] == 650_000
    assert seen["resumeTaken"] is True
    assert 649_000 < seen["afterResume"] <= 650_000
