"""The proctor's dashboard in headless Chromium, with candidates on the real server (issue 5,
items 3, 6, 7): a proctor admits, watches, warns, pauses and terminates; an observer cannot act;
a hundred sittings on one board stay usable."""

from __future__ import annotations

import asyncio
import base64
import re
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import BrowserContext, expect

from engine.client import CandidateClient, sign_in
from engine.server import keys
from tests.e2e.browser.pages import Candidate, Dashboard, fresh_code
from tests.e2e.conftest import Running

NewContext = Callable[..., Awaitable[BrowserContext]]
EXAM = "b-kz-proctored"

# A fictional camera still: a silhouette on a coloured wall, drawn by the browser as a JPEG.
DRAW_STILL = """(index) => {
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  const g = canvas.getContext("2d");
  g.fillStyle = `hsl(${(index * 47) % 360} 25% 70%)`;
  g.fillRect(0, 0, 320, 240);
  g.fillStyle = `hsl(${(index * 83) % 360} 30% 30%)`;
  g.beginPath();
  g.ellipse(160, 250, 95, 70, 0, 0, Math.PI * 2);
  g.fill();
  g.fillStyle = "hsl(30 35% 62%)";
  g.beginPath();
  g.arc(160, 115, 48, 0, Math.PI * 2);
  g.fill();
  return canvas.toDataURL("image/jpeg", 0.8).split(",")[1];
}"""


def post_still(base_url: str, token: str, jpeg: bytes) -> None:
    request = urllib.request.Request(
        f"{base_url}/api/v1/media/legislation/snapshot",
        data=jpeg,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def test_a_proctor_admits_watches_and_terminates_and_the_candidate_sees_it_at_once(
    site: Running, new_context: NewContext, screenshots: Path
) -> None:
    board = await Dashboard.open(await new_context(locale="ru-RU"), site, EXAM, "proctor-astana")
    proctor = board.page
    await expect(proctor.locator("#role")).to_have_text("Проктор")
    await expect(board.tiles()).to_have_count(6)  # the candidates of astana-gpo only

    candidate = await Candidate.open(await new_context(locale="kk-KZ"), site, EXAM, "astana-gpo")
    page = candidate.page
    sitting = candidate.sitting_id()
    await candidate.sign_in()
    await candidate.choose_language("Қазақ тілі")
    await candidate.check_devices()
    await expect(candidate.screen("waiting")).to_be_visible()

    # The waiting candidate comes first, marked as needing a look, with the camera still.
    tile = board.tile(sitting)
    await expect(tile).to_have_attribute("data-attention", "2")
    await expect(tile.locator(".tile-state")).to_have_text("Ждёт проверки личности")
    await expect(board.tiles().first).to_have_attribute("data-sitting", sitting)
    await expect(tile.locator(".tile-snapshot")).to_be_visible()

    await board.open_detail(sitting)
    admit = board.action("admit").locator("button")
    await expect(admit).to_be_disabled()
    await board.act("confirm-identity", document="000000000000")
    await board.expect_result("failed", re.compile("identity_mismatch"))
    registered = site.hall.exams[EXAM].candidates[candidate.candidate_id].document
    await board.act("confirm-identity", document=registered)
    await board.expect_result("ok", "Выполнено: личность подтверждена.")
    await expect(admit).to_be_enabled()
    await admit.click()
    await board.expect_result("ok", "Выполнено: кандидат допущен.")

    await expect(candidate.screen("rules")).to_be_visible()
    await candidate.accept_rules_and_start()
    for position in (1, 2):
        await candidate.answer(position)
        await candidate.expect_save_state("saved")
        await candidate.next()
    await expect(tile.locator(".tile-progress")).to_have_text("Отвечено 2 из 10")
    await expect(tile.locator(".tile-state")).to_have_text("Идёт тест")
    await expect(proctor.locator("#detail-facts")).to_contain_text("Идёт тест")

    # Copying from the test is refused on the page and reported: the proctor sees it live.
    await page.locator("#q-stem").select_text()
    await page.keyboard.press("Control+C")
    log = proctor.locator("#live-log")
    await expect(log.locator(".log-entry").filter(has_text="копирование текста")).to_have_count(1)
    await expect(tile.locator(".tile-irregularities")).to_contain_text("Нарушений: ")

    await board.act("warn", text="Смотрите на экран, пожалуйста")
    await board.expect_result("ok", "Выполнено: предупреждение отправлено.")
    await expect(page.locator("#notice")).to_be_visible()
    await expect(page.locator("#notice-text")).to_have_text("Смотрите на экран, пожалуйста")

    await board.act("pause", reason="Проверка помещения")
    await expect(page.locator("#paused-overlay")).to_be_visible()
    await expect(page.locator("#timer-box")).to_have_class(re.compile("paused"))
    await board.act("resume")
    await expect(page.locator("#paused-overlay")).to_be_hidden()

    # Terminating asks first; "Cancel" leaves the test running.
    await board.act("terminate", reason="Посторонний в помещении")
    confirm = proctor.locator("#confirm")
    await expect(confirm).to_be_visible()
    await expect(proctor.locator("#confirm-text")).to_contain_text("Отменить это нельзя")
    await proctor.locator("#confirm-no").click()
    await expect(confirm).to_be_hidden()
    await expect(candidate.screen("test")).to_be_visible()
    await board.act("terminate", reason="Посторонний в помещении")
    await board.page.screenshot(path=str(screenshots / "dashboard-confirm.png"))
    await proctor.locator("#confirm-yes").click()

    await expect(candidate.screen("closed")).to_be_visible(timeout=5_000)
    await expect(page.locator("#closed-title")).to_have_text("Проктор тестіңізді тоқтатты")
    # The proctor's own words, under the page's language: not claimed to be English.
    await expect(page.locator("#closed-reason")).to_have_text("Себебі: Посторонний в помещении")
    assert await page.locator("#closed-reason").get_attribute("lang") is None
    await expect(page.locator("#result-outcome")).to_have_text("Нәтиженің күші жойылды")
    await expect(tile.locator(".tile-state")).to_have_text("Тест прекращён")

    events = proctor.locator("#events tbody tr")
    await expect(events.filter(has_text="terminated")).to_have_count(1)
    await expect(events.filter(has_text="warned")).to_have_count(1)
    fixation = proctor.locator("#fixation tbody tr")
    await expect(fixation.filter(has_text="снимок").first).to_be_visible()
    await proctor.locator("#detail-close").click()
    await expect(proctor.locator("#detail")).to_be_hidden()
    await expect(tile.locator(".tile-open")).to_be_focused()
    assert board.errors == [] and candidate.errors == []


async def test_an_observer_watches_live_and_has_no_action(
    site: Running, new_context: NewContext
) -> None:
    board = await Dashboard.open(await new_context(locale="uk-UA"), site, EXAM, "observer-astana")
    observer = board.page
    await expect(observer.locator("#role")).to_have_text("Спостерігач: лише перегляд")
    await expect(observer.locator("#observer-note")).to_be_visible()

    candidate = await Candidate.open(await new_context(locale="ru-RU"), site, EXAM, "astana-gpo")
    await candidate.sign_in()
    tile = board.tile(candidate.sitting_id())
    await expect(tile.locator(".tile-connection")).to_have_text("На зв’язку")
    await expect(tile.locator(".tile-state")).to_have_text("Чекає перевірки особи")

    await board.open_detail(candidate.sitting_id())
    await expect(observer.locator("#detail-facts")).to_contain_text(candidate.candidate_id)
    await expect(observer.locator("#actions")).to_be_hidden()
    buttons = observer.locator("#detail button:visible")
    await expect(buttons).to_have_text(["Закрити", "Оновити"])
    assert board.errors == []


async def test_a_hundred_sittings_stay_usable_and_what_needs_attention_comes_first(
    site: Running, new_context: NewContext, screenshots: Path
) -> None:
    exam = "b-kz-hall"
    clients: list[CandidateClient] = []
    for _ in range(100):
        _, code = fresh_code(site, exam)
        signed = await sign_in(site.url, code)
        client = CandidateClient(site.url, signed["token"], "legislation")
        await client.connect()
        clients.append(client)
    forms = await asyncio.gather(*(client.start("ru") for client in clients))
    for client, form in zip(clients, forms, strict=True):
        await client.answer(form.items[0].id, 0, wait=False)

    board = await Dashboard.open(await new_context(locale="en-GB"), site, exam, "proctor-almaty")
    page = board.page
    await expect(board.tiles()).to_have_count(100)
    await expect(page.locator("#summary")).to_contain_text("In progress: 100")
    # Each tile counts its candidate's 30 minutes down from the feed (a ServerClock per tile).
    countdown = re.compile(r"^(29:[0-5]\d|30:00) left$")
    await expect(board.tiles().first.locator(".tile-time")).to_have_text(countdown)
    await expect(page.locator(".tile-progress").filter(has_text="1 of 10 answered")).to_have_count(
        100
    )
    # Camera stills through the real upload endpoint: the tiles in view show them, the tiles
    # far below the fold do not fetch theirs until scrolled to. The server here shares two
    # cores with Chromium and a hundred sittings: a late wake of its loop must not have these
    # stills turned away with `503 busy` (the gate has tests of its own, test_upload_gate.py).
    site.app[keys.UPLOAD_GATE].late_s = None
    for index, client in enumerate(clients):
        still = await page.evaluate(DRAW_STILL, index)
        await asyncio.to_thread(post_still, site.url, client.token, base64.b64decode(still))
    for index in range(5):
        await expect(board.tiles().nth(index).locator(".tile-snapshot")).to_be_visible()
    await expect(board.tiles().nth(99).locator(".tile-snapshot")).to_be_hidden()
    await page.screenshot(path=str(screenshots / "dashboard.png"))
    await board.tiles().nth(99).scroll_into_view_if_needed()
    await expect(board.tiles().nth(99).locator(".tile-snapshot")).to_be_visible()
    await page.evaluate("window.scrollTo(0, 0)")

    # A keyboard user on a calm tile keeps their place while the grid reorders around them.
    calm = board.tiles().nth(50)
    calm_sitting = await calm.get_attribute("data-sitting")
    await calm.locator(".tile-open").focus()

    dropped = clients[:3]
    dropped_ids = {client.view.welcome.sitting for client in dropped if client.view.welcome}
    for client in dropped:
        await client.drop()
    await expect(page.locator("#summary")).to_contain_text("Act now: 3")
    firsts = [await board.tiles().nth(index).get_attribute("data-sitting") for index in range(3)]
    assert set(firsts) == dropped_ids
    for sitting in dropped_ids:
        await expect(board.tile(sitting).locator(".tile-attention")).to_have_text("Act now")
        await expect(board.tile(sitting).locator(".tile-connection")).to_contain_text(
            "Disconnected"
        )
    await expect(board.tile(calm_sitting or "").locator(".tile-open")).to_be_focused()

    await page.locator("#density").click()
    await expect(page.locator("#density")).to_have_attribute("aria-pressed", "true")
    await page.screenshot(path=str(screenshots / "dashboard-100-compact.png"))
    await page.locator("#filter").select_option("attention")
    await expect(board.tiles()).to_have_count(3)
    await page.locator("#filter").select_option("all")
    await page.locator("#search").fill(clients[10].view.welcome.sitting.split("/")[1])  # type: ignore[union-attr]
    await expect(board.tiles()).to_have_count(1)
    assert board.errors == []
    for client in clients[3:]:
        await client.close()


async def test_a_candidate_whose_laptop_failed_goes_on_elsewhere_with_a_new_code(
    site: Running, new_context: NewContext
) -> None:
    board = await Dashboard.open(await new_context(locale="ru-RU"), site, EXAM, "proctor-astana")
    first = await Candidate.open(await new_context(locale="kk-KZ"), site, EXAM, "astana-gpo")
    sitting = first.sitting_id()
    await first.sign_in()
    await first.choose_language("Қазақ тілі")
    await first.check_devices()
    await board.open_detail(sitting)
    registered = site.hall.exams[EXAM].candidates[first.candidate_id].document
    await board.act("confirm-identity", document=registered)
    await board.expect_result("ok", "Выполнено: личность подтверждена.")
    await board.action("admit").locator("button").click()
    await first.accept_rules_and_start()
    await first.answer(1)
    await first.expect_save_state("saved")

    # The laptop freezes; the proctor issues a new code, shown once, and reads it out.
    await board.act("new-code")
    pattern = r"[A-Z2-9]{5}-[A-Z2-9]{5}"
    await board.expect_result("ok", re.compile(rf"^Новый код доступа: {pattern}\. Передайте"))
    shown = await board.page.locator("#action-result").text_content() or ""
    (new_code,) = re.findall(pattern, shown)
    await expect(first.screen("ended")).to_be_visible()
    await expect(first.page.locator("#ended-text")).to_have_text(
        "Кіруіңіз енді жарамсыз. Проктордан жаңа кіру кодын сұраңыз."
    )

    # On another computer the new code opens the same test, with the answer given before.
    context = await new_context(locale="kk-KZ")
    page = await context.new_page()
    second = Candidate(page, site, EXAM, first.candidate_id, new_code)
    await page.goto(site.url + "/")
    await second.sign_in()
    await expect(second.screen("test")).to_be_visible()
    checked = page.locator("#q-options-list input[type=radio]").nth(1)
    await expect(checked).to_be_checked()
    await expect(page.locator("#progress")).to_have_text("Жауап берілді: 1 / 10")
    assert await second.stored_choices() == {first.form().items[0].item_id: 1}
    assert board.errors == [] and second.errors == []
