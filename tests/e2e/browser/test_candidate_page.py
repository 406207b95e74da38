"""The candidate's page in headless Chromium against the real server (issue 5, items 1, 4, 6, 7)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import msgpack
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    WebSocket,
    WebSocketRoute,
    expect,
)

from engine.fixation import stored_bytes
from engine.resources import bundled_banks_dir
from engine.server import keys
from tests.e2e.browser.catalog import write_browser_exams
from tests.e2e.browser.conftest import SCREENSHOTS
from tests.e2e.browser.pages import Candidate
from tests.e2e.conftest import Running

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_a_candidate_takes_a_whole_kz_test_in_kazakh(
    site: Running, new_context: NewContext, screenshots: Path
) -> None:
    context = await new_context(locale="kk-KZ")
    candidate = await Candidate.open(context, site, "b-kz")
    page = candidate.page
    await expect(page.locator("#screen-signin h1")).to_have_text("Тестілеуге кіру")
    await candidate.sign_in()
    await candidate.choose_language("Қазақ тілі")
    await candidate.check_devices()
    await expect(page.locator("#rules-facts")).to_have_text("Сұрақтар саны: 10. Уақыты: 30 минут.")
    await candidate.accept_rules_and_start()

    form = candidate.form()
    bank = site.hall.exams["b-kz"].banks["legislation"]
    chosen: dict[str, int] = {}
    for index, form_item in enumerate(form.items):
        kazakh = bank.by_id[form_item.item_id].texts["kk"]
        await expect(page.locator("#q-heading")).to_have_text(f"Сұрақ {index + 1} / 10")
        await expect(page.locator("#q-stem")).to_have_text(kazakh.stem)
        position = index % len(kazakh.options)
        await candidate.answer(position)
        await candidate.expect_save_state("saved")
        await expect(page.locator("#q-save")).to_have_text("Сақталды")
        chosen[form_item.item_id] = position
        if index == 3:
            await page.locator("#flag-button").click()
            await expect(page.locator("#flag-button")).to_have_attribute("aria-pressed", "true")
            await screenshot_test_page(candidate, screenshots / "candidate-test.png")
        if index < len(form.items) - 1:
            await candidate.next()

    cells = page.locator(".qmap-cell:not(.sample)")
    await expect(cells).to_have_count(10)
    await expect(page.locator(".qmap-cell.answered:not(.sample)")).to_have_count(10)
    await expect(cells.nth(3)).to_have_attribute("aria-label", re.compile("қайта қарауға"))
    await expect(page.locator("#progress")).to_have_text("Жауап берілді: 10 / 10")

    await page.locator("#finish-button").click()
    await expect(page.locator("#submit-summary")).to_have_text(
        "Сіз 10 сұрақтың 10 сұрағына жауап бердіңіз."
    )
    await expect(page.locator("#submit-details")).to_contain_text("Барлық сұраққа жауап берілген.")
    await page.locator("#submit-confirm").click()

    await expect(candidate.screen("closed")).to_be_visible()
    await expect(page.locator("#closed-title")).to_have_text("Жауаптарыңыз жіберілді")
    await expect(page.locator("#closed-answered")).to_have_text("Сақталған жауаптар: 10 / 10.")
    await expect(page.locator("#result-score")).to_contain_text("10 ұпайдан")
    await expect(page.locator("#result-outcome")).to_have_text(re.compile("Тесттен (өтті|өтпеді)"))
    await expect(page.locator("#acknowledge-button")).to_be_visible()
    await page.screenshot(path=str(screenshots / "candidate-result.png"), full_page=True)

    assert await candidate.stored_choices() == chosen
    # The recording up to the submit and the camera stills reached the fixation record (6.3).
    media = await site.hall.media_records(candidate.sitting_id())
    chunks = [record for record in media if record.kind.value == "chunk"]
    stills = [record for record in media if record.kind.value == "snapshot"]
    assert chunks and chunks[0].seq == 1 and chunks[0].media_type == "video/webm"
    assert stills and all(record.media_type == "image/jpeg" for record in stills)
    assert candidate.errors == []
    await context.close()


async def screenshot_test_page(candidate: Candidate, path: Path) -> None:
    # The fake camera draws a moving clock: hide the self-view so the picture is stable.
    await candidate.page.add_style_tag(content="#self-view { visibility: hidden; }")
    await candidate.page.screenshot(path=str(path))
    await candidate.page.add_style_tag(content="#self-view { visibility: visible; }")


async def test_a_candidate_takes_the_ua_professional_part_in_ukrainian(
    site: Running, new_context: NewContext
) -> None:
    context = await new_context(locale="uk-UA")
    candidate = await Candidate.open(context, site, "b-ua")
    page = candidate.page
    await candidate.sign_in()
    # One language only: no language question, straight to the device check.
    await candidate.check_devices()
    await expect(page.locator("#rules-part-number")).to_have_text("Частина 1 з 2")
    await expect(page.locator("#rules-part")).to_have_text(
        "Тестування на знання законодавства (професійний тест)"
    )
    await candidate.accept_rules_and_start()

    form = candidate.form("professional")
    bank = site.hall.exams["b-ua"].banks["professional"]
    chosen: dict[str, int] = {}
    # Free navigation: the map takes the candidate to the last question first, then back.
    order = [len(form.items) - 1, *range(len(form.items) - 1)]
    for index in order:
        await page.locator(".qmap-cell:not(.sample)").nth(index).click()
        await expect(page.locator("#q-heading")).to_have_text(f"Питання {index + 1} з 10")
        item = form.items[index]
        await expect(page.locator("#q-stem")).to_have_text(
            bank.by_id[item.item_id].texts["uk"].stem
        )
        await candidate.answer(1)
        await candidate.expect_save_state("saved")
        chosen[item.item_id] = 1
    # A change of mind is saved too, and the map says which question is current.
    await page.locator(".qmap-cell:not(.sample)").nth(0).click()
    await candidate.answer(2)
    await candidate.expect_save_state("saved")
    chosen[form.items[0].item_id] = 2
    await expect(page.locator(".qmap-cell.current:not(.sample)")).to_have_text("1")

    await page.locator("#finish-button").click()
    await page.locator("#submit-confirm").click()
    await expect(page.locator("#closed-title")).to_have_text("Ваші відповіді надіслано")
    await expect(page.locator("#result-outcome")).to_have_text("Бали враховуються в рейтингу")
    await expect(page.locator("#result-score")).to_have_text(re.compile(r"^\d+ з 10 балів$"))
    assert await candidate.stored_choices("professional") == chosen

    # The second part follows from the same page.
    next_part = page.locator("#next-part")
    await expect(next_part).to_have_text(
        "Перейти до наступної частини: Тестування загальних здібностей"
    )
    await next_part.click()
    await expect(page.locator("#rules-part-number")).to_have_text("Частина 2 з 2")
    await expect(page.locator("#rules-facts")).to_have_text("Питань: 9. Час: 10 хвилин.")
    assert candidate.errors == []
    await context.close()


class CuttableSocket:
    """Sits between the page and the server's candidate socket and can cut it, as a network
    would: while cut, every new connection fails at once (1011, 'reconnect')."""

    def __init__(self) -> None:
        self.cut = False
        self.live: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.connections = 0

    async def route(self, ws: WebSocketRoute) -> None:
        if self.cut:
            await ws.close(code=1011, reason="network down")
            return
        self.connections += 1
        self.live.append((ws, ws.connect_to_server()))

    async def cut_now(self) -> None:
        self.cut = True
        for page_side, server_side in self.live:
            await server_side.close()
            await page_side.close(code=1011, reason="network down")
        self.live.clear()


async def test_a_cut_connection_and_a_reload_lose_no_answer(
    site: Running, new_context: NewContext
) -> None:
    context = await new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz")
    page = candidate.page
    network = CuttableSocket()
    await page.route_web_socket(re.compile(r"/ws/candidate$"), network.route)
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    await candidate.accept_rules_and_start()
    form = candidate.form()
    chosen: dict[str, int] = {}

    for index in range(3):
        await candidate.answer(index % 4)
        await candidate.expect_save_state("saved")
        chosen[form.items[index].item_id] = index % 4
        await candidate.next()
    assert await candidate.stored_choices() == chosen

    await network.cut_now()
    await expect(page.locator("#connection-banner")).to_be_visible()
    for index in range(3, 6):
        await candidate.answer((index + 1) % 4)
        # Kept, and said so: not sent yet.
        await candidate.expect_save_state("offline")
        chosen[form.items[index].item_id] = (index + 1) % 4
        await candidate.next()
    await expect(page.locator("#unsent")).to_have_text("Ещё не сохранено: 3")
    await expect(page.locator(".qmap-cell.pending:not(.sample)")).to_have_count(3)
    assert len(await candidate.stored_choices()) == 3, "nothing got through while cut"

    # Even a reload while the network is down keeps the unsent answers.
    await page.reload()
    await expect(candidate.screen("connecting")).to_be_visible()
    network.cut = False
    await expect(candidate.screen("test")).to_be_visible(timeout=20_000)
    await expect(page.locator("#connection-banner")).to_be_hidden()
    await expect(page.locator("#unsent")).to_have_text("")
    await expect(page.locator(".qmap-cell.answered:not(.sample)")).to_have_count(6)
    await expect(page.locator("#progress")).to_have_text("Отвечено 6 из 10")
    assert await candidate.stored_choices() == chosen

    # After the reload the page comes back to the question it was on, and goes on working.
    await expect(page.locator("#q-heading")).to_have_text("Вопрос 7 из 10")
    await candidate.answer(0)
    await candidate.expect_save_state("saved")
    chosen[form.items[6].item_id] = 0
    assert await candidate.stored_choices() == chosen
    assert network.connections >= 2
    assert candidate.errors == []
    await context.close()


async def test_the_deadline_closes_the_page_and_the_warning_is_announced(
    site: Running, new_context: NewContext
) -> None:
    context = await new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz-short")
    page = candidate.page
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    await candidate.accept_rules_and_start()
    timer = page.get_by_role("timer")
    await expect(timer).to_have_text(re.compile(r"^00:1[0-4]$"))
    await candidate.answer(0)
    await candidate.expect_save_state("saved")

    # The server's warning at 8 s: shown, and said once through the assertive live region.
    warning = page.locator("#time-warning")
    await expect(warning).to_have_text("Осталось 8 секунд.", timeout=15_000)
    await expect(page.locator("#announcer")).to_have_text("Осталось 8 секунд.")
    assert await page.locator("#announcer").get_attribute("aria-live") == "assertive"
    assert await timer.get_attribute("aria-live") is None, "the timer itself must stay quiet"

    await expect(candidate.screen("closed")).to_be_visible(timeout=20_000)
    await expect(page.locator("#closed-title")).to_have_text("Время истекло: тест закрыт")
    # The engine's own reason ("time is up") is the title's, in Russian: no English line under it.
    await expect(page.locator("#closed-reason")).to_have_text("")
    await expect(page.locator("#closed-answered")).to_have_text("Сохранено ответов: 1 из 10.")
    await expect(page.locator("#result-outcome")).to_have_text("Тест не пройден")
    stored = await site.app[keys.STORE].load_sitting(candidate.sitting_id())
    assert stored is not None and stored.snapshot.state.value == "expired"
    assert candidate.errors == []
    await context.close()


async def test_the_device_check_says_what_failed_and_the_candidate_can_fix_it(
    browser_without_media_consent: Browser, site: Running
) -> None:
    context = await browser_without_media_consent.new_context(
        viewport={"width": 1280, "height": 720}, locale="en-GB"
    )
    candidate = await Candidate.open(context, site, "b-kz")
    page = candidate.page
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await page.locator("#ui-language").select_option("en")
    await page.locator("#devices-check").click()
    camera = page.locator("#device-camera")
    await expect(camera).to_have_attribute("data-state", "failed")
    await expect(camera.locator(".device-reason")).to_contain_text("Access was refused")
    await expect(page.locator("#devices-help")).to_contain_text("call the proctor")
    await expect(page.locator("#devices-help")).to_contain_text("no time is running")
    await expect(page.locator("#devices-continue")).to_be_disabled()
    await page.screenshot(path=str(SCREENSHOTS / "candidate-device-check-failed.png"))

    # The candidate allows the camera, checks again and may go on; the clock never started.
    await context.grant_permissions(["camera", "microphone"], origin=site.url)
    await page.locator("#devices-check").click()
    await expect(camera).to_have_attribute("data-state", "ok")
    await expect(page.locator("#devices-help")).to_be_hidden()
    await page.locator("#devices-continue").click()
    await expect(candidate.screen("rules")).to_be_visible()
    stored = await site.app[keys.STORE].load_sitting(candidate.sitting_id())
    assert stored is None or stored.snapshot.started_at is None
    assert candidate.errors == []
    await context.close()


async def tab_to(page: Page, selector: str, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab (or `key`) until the element matching `selector` has the focus."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press(key)
    raise AssertionError(f"Tab never reached {selector}")


FOCUS_RING = """() => {
  const style = getComputedStyle(document.activeElement);
  return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
}"""

# WCAG 2.x contrast of each element's text against the first opaque background behind it.
CONTRASTS = """(selectors) => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const value = rgb(getComputedStyle(node).backgroundColor);
      if (value.length < 4 || value[3] === 1) return value.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = {};
  for (const selector of selectors) {
    const node = document.querySelector(selector);
    if (!node) { out[selector] = null; continue; }
    const [a, b] = [luminance(rgb(getComputedStyle(node).color)), luminance(background(node))];
    out[selector] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""


async def test_a_narrow_window_and_the_keyboard_alone_are_enough(
    site: Running, new_context: NewContext, screenshots: Path
) -> None:
    context = await new_context(locale="en-GB", width=390, height=844)
    candidate = await Candidate.open(context, site, "b-kz")
    page = candidate.page
    # The screen's heading has the focus; a skip link shows itself when focused.
    await expect(page.locator("#screen-signin h1")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await tab_to(page, ".skip-link", key="Shift+Tab")
    assert await page.evaluate(FOCUS_RING), "the focused element shows no focus ring"
    box = await page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link stays off screen"

    await tab_to(page, "#access-code")
    await page.keyboard.type(candidate.code)
    await page.keyboard.press("Enter")
    await expect(candidate.screen("language")).to_be_visible()
    await tab_to(page, "input[name=test-language]")
    await page.keyboard.press("ArrowDown")  # to Русский язык
    await expect(page.get_by_role("radio", name="Русский язык")).to_be_checked()
    await tab_to(page, "#language-form button")
    await page.keyboard.press("Enter")

    await tab_to(page, "#devices-check")
    assert await page.evaluate(FOCUS_RING)
    await page.keyboard.press("Enter")
    await expect(page.locator("#devices-continue")).to_be_enabled()
    await tab_to(page, "#devices-continue")
    await page.keyboard.press("Enter")
    await tab_to(page, "#rules-accept")
    await page.keyboard.press("Space")
    await tab_to(page, "#start-button")
    await page.keyboard.press("Enter")
    await expect(candidate.screen("test")).to_be_visible()
    await expect(page.locator("#q-heading")).to_be_focused()

    await tab_to(page, "#q-options-list input")
    await page.keyboard.press("Space")
    await page.keyboard.press("ArrowDown")  # a change of mind, by arrow key
    await candidate.expect_save_state("saved")
    await tab_to(page, "#flag-button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#flag-button")).to_have_attribute("aria-pressed", "true")
    await tab_to(page, "#next-button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#q-heading")).to_have_text("Вопрос 2 из 10")
    await expect(page.locator("#q-heading")).to_be_focused()
    form = candidate.form()
    assert await candidate.stored_choices() == {form.items[0].item_id: 1}

    # Nothing is wider than the window, and targets are big enough to hit (WCAG 2.5.8).
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "the page scrolls sideways at 390 px"
    )
    sizes = await page.locator(
        ".qmap-cell:not(.sample), #q-options-list label, .question-actions button"
    ).evaluate_all("(nodes) => nodes.map((n) => [n.offsetWidth, n.offsetHeight])")
    assert sizes and all(width >= 24 and height >= 24 for width, height in sizes), sizes
    contrasts = await page.evaluate(
        CONTRASTS,
        [
            "#q-stem",
            "#q-save",
            "#timer",
            "#progress",
            ".hint",
            "#finish-button",
            "#next-button",
            "#prev-button",
            ".qmap-cell.answered:not(.sample)",
            ".qmap-cell:not(.answered):not(.sample)",
            ".qmap-flag",
            "#net",
        ],
    )
    low = {selector: ratio for selector, ratio in contrasts.items() if ratio is None or ratio < 4.5}
    assert not low, f"text below 4.5:1 contrast: {low}"
    await page.screenshot(path=str(screenshots / "candidate-narrow.png"), full_page=True)
    assert candidate.errors == []
    await context.close()


async def test_where_recording_is_optional_a_candidate_without_a_camera_goes_on_and_is_noted(
    browser_without_media_consent: Browser, site: Running
) -> None:
    context = await browser_without_media_consent.new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz-unrecorded")
    page = candidate.page
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await page.locator("#devices-check").click()
    await expect(page.locator("#device-camera")).to_have_attribute("data-state", "failed")
    await expect(page.locator("#devices-optional")).to_contain_text("проктор будет уведомлён")
    await page.locator("#devices-continue").click()
    await candidate.accept_rules_and_start()
    await candidate.answer(0)
    await candidate.expect_save_state("saved")

    events = await site.hall.store.events_of(candidate.sitting_id())
    signals = [e["data"] for e in events if e["kind"] == "signal"]
    noted = [e["data"] for e in events if e["kind"] == "irregularity"]
    assert [s["kind"] for s in signals if s["kind"] == "no-devices"] == ["no-devices"], signals
    assert signals[0]["detail"] == "camera: denied; microphone: denied"
    assert [(n["kind"], n["severity"]) for n in noted] == [("no-devices", 2)]
    assert await site.hall.media_records(candidate.sitting_id()) == [], "nothing to record"
    assert candidate.errors == []
    await context.close()


async def test_a_busy_server_holds_the_page_s_still_and_takes_it_once_it_has_room(
    site: Running, new_context: NewContext
) -> None:
    gate = site.app[keys.UPLOAD_GATE]
    gate.most_at_once = 0  # every upload is held…
    context = await new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz")
    replies: list[tuple[float, str]] = []

    def on_reply(payload: str | bytes) -> None:
        reply = msgpack.unpackb(payload)
        if reply.get("kind") == "snapshot":
            replies.append((time.monotonic(), reply.get("error", reply["t"])))

    def on_socket(socket: WebSocket) -> None:
        if socket.url.endswith("/ws/media"):
            socket.on("framereceived", on_reply)

    candidate.page.on("websocket", on_socket)
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    async with asyncio.timeout(15):
        while gate.holding == 0:
            await asyncio.sleep(0.1)
    await asyncio.sleep(2)
    assert replies == [], "held, not refused"
    released_at = time.monotonic()
    gate.most_at_once = 256  # …until the node has room again
    async with asyncio.timeout(15):
        while not replies:
            await asyncio.sleep(0.1)

    (stored_at, reply), *_ = replies
    assert reply == "stored" and stored_at >= released_at
    await candidate.accept_rules_and_start()
    media = await site.hall.media_records(candidate.sitting_id())
    assert [record.seq for record in media if record.kind.value == "snapshot"][:1] == [1]
    assert gate.turned_away == {} and gate.held >= 1
    assert candidate.errors == []
    await context.close()


async def test_the_page_records_to_the_media_process_the_sign_in_names(
    start_server: Callable[..., Awaitable[Running]], tmp_path: Path, new_context: NewContext
) -> None:
    site = await start_server(
        banks_dir=bundled_banks_dir(),
        exams_dir=write_browser_exams(tmp_path / "site"),
        media_port=0,
    )
    link = site.app[keys.MEDIA_LINK]
    context = await new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz")
    media_sockets: list[str] = []
    candidate.page.on(
        "websocket",
        lambda socket: media_sockets.append(socket.url) if "/ws/media" in socket.url else None,
    )
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    await candidate.accept_rules_and_start()
    kinds: set[str] = set()
    async with asyncio.timeout(30):
        while kinds != {"chunk", "snapshot"}:
            await asyncio.sleep(0.2)
            media = await site.hall.media_records(candidate.sitting_id())
            kinds = {record.kind.value for record in media}

    async with asyncio.timeout(15):  # levels every 5 s, on the media socket once it is open
        while not link.reported.get("levels_frames"):
            await asyncio.sleep(0.2)
    assert media_sockets and {urlsplit(url).port for url in media_sockets} == {link.port}
    assert link.port != site.server.port
    chunk = next(record for record in media if record.kind.value == "chunk")
    assert stored_bytes(site.config.data_dir, chunk)[:4] == b"\x1a\x45\xdf\xa3", "a WebM stream"
    assert candidate.errors == []
    await context.close()


async def test_where_the_media_socket_cannot_open_the_page_sends_its_media_over_http(
    site: Running, new_context: NewContext
) -> None:
    context = await new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz")
    refused_sockets = 0

    async def refuse(ws: WebSocketRoute) -> None:
        nonlocal refused_sockets
        refused_sockets += 1
        await ws.close(code=1011, reason="this network passes no such socket")

    posted: list[int] = []

    def on_response(response: Response) -> None:
        if "/api/v1/media/" in response.url:
            posted.append(response.status)

    await candidate.page.route_web_socket(re.compile(r"/ws/media$"), refuse)
    candidate.page.on("response", on_response)
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    async with asyncio.timeout(20):
        while 200 not in posted:
            await asyncio.sleep(0.1)

    assert refused_sockets == 3, "three tries at the socket, then HTTP"
    media = await site.hall.media_records(candidate.sitting_id())
    assert [record.kind.value for record in media][:1] == ["snapshot"]
    assert candidate.errors == []
    await context.close()


async def test_a_candidate_talking_through_the_real_microphone_path_is_flagged(
    browser_hearing_speech: Browser, site: Running
) -> None:
    """The page's level meter, its levels frames and the talk detector, end to end."""
    context = await browser_hearing_speech.new_context(locale="ru-RU")
    candidate = await Candidate.open(context, site, "b-kz")
    await candidate.sign_in()
    await candidate.choose_language("Русский язык")
    await candidate.check_devices()
    await candidate.accept_rules_and_start()
    sitting = candidate.sitting_id()

    async def heard() -> list[dict[str, object]]:
        events = await site.hall.store.events_of(sitting)
        return [e["data"] for e in events if e["kind"] == "irregularity"]

    async with asyncio.timeout(25):  # a levels frame every 5 s; 4 s of voice in every 7
        while not [f for f in await heard() if f["kind"] == "talk"]:
            await asyncio.sleep(0.5)
    talk = next(f for f in await heard() if f["kind"] == "talk")
    assert talk["source"] == "talk"
    # The level is the warble's own (RMS of a 0.35 sine: 0.25), not Chromium's default beep.
    assert re.search(
        r"speech-like sound for \d\.\d s \(level 0\.2\d, room 0\.00\)", str(talk["detail"])
    )
    assert candidate.errors == []
    await context.close()
